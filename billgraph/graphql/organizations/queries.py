import strawberry

from billgraph.graphql.context import Info
from billgraph.graphql.organizations.types import Organization, viewer


@strawberry.type
class OrganizationQueries:
    @strawberry.field(description="The organization of the calling API key.")
    def viewer(self, info: Info) -> Organization:
        return viewer(info)
