// billgraph's Toss Payments card registration for a subscription: asks Toss for a billing
// authorization (requestBillingAuth) under the session's customerKey, from #toss-billing's
// data attributes, on "Register card". Toss then sends the browser to the success address,
// where billgraph issues the billing key on its server, or to the fail address. No inline
// script: the page's policy allows this file and Toss's SDK only.
"use strict";

(function () {
  const root = document.getElementById("toss-billing");
  const button = document.getElementById("register");
  const error = document.getElementById("toss-error");

  function show(message) {
    error.textContent = message;
    error.hidden = false;
  }

  if (!root || !button || !error) {
    return;
  }
  if (typeof window.TossPayments !== "function") {
    show("The card form could not be loaded. Reload the page to try again.");
    return;
  }

  const data = root.dataset;
  const payment = window.TossPayments(data.clientKey).payment({ customerKey: data.customerKey });
  button.disabled = false;

  button.addEventListener("click", async function () {
    button.disabled = true;
    error.hidden = true;
    try {
      await payment.requestBillingAuth({
        method: "CARD",
        successUrl: data.successUrl,
        failUrl: data.failUrl,
      });
    } catch (failure) {
      // The customer closed the window, or Toss refused before redirecting.
      show((failure && failure.message) || "The card was not registered. Try again.");
      button.disabled = false;
    }
  });
})();
