FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY billgraph ./billgraph
RUN pip install --no-cache-dir --no-deps .
RUN useradd --system billgraph
USER billgraph
EXPOSE 8000
CMD ["billgraph", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
