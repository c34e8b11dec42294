// billgraph's Toss Payments page: renders Toss's payment widget for the checkout session
// described by #toss-checkout's data attributes, and asks Toss for the payment on "Pay".
// Toss then sends the browser to the success or fail address, where billgraph verifies the
// amount and confirms the payment on its server. No inline script: the page's policy
// allows this file and Toss's SDK only.
"use strict";

(function () {
  const root = document.getElementById("toss-checkout");
  const button = document.getElementById("pay");
  const error = document.getElementById("toss-error");

  function show(message) {
    error.textContent = message;
    error.hidden = false;
  }

  if (!root || !button || !error) {
    return;
  }
  if (typeof window.TossPayments !== "function") {
    show("The payment form could not be loaded. Reload the page to try again.");
    return;
  }

  const data = root.dataset;
  const amount = { currency: data.currency, value: Number(data.amount) };
  const widgets = window.TossPayments(data.clientKey).widgets({
    customerKey: data.customerKey || window.TossPayments.ANONYMOUS,
  });

  async function render() {
    await widgets.setAmount(amount);
    await Promise.all([
      widgets.renderPaymentMethods({ selector: "#payment-method", variantKey: "DEFAULT" }),
      widgets.renderAgreement({ selector: "#agreement", variantKey: "AGREEMENT" }),
    ]);
    button.disabled = false;
  }

  button.addEventListener("click", async function () {
    button.disabled = true;
    error.hidden = true;
    try {
      await widgets.requestPayment({
        orderId: data.orderId,
        orderName: data.orderName,
        successUrl: data.successUrl,
        failUrl: data.failUrl,
      });
    } catch (failure) {
      // The customer closed the payment window, or Toss refused before redirecting.
      show((failure && failure.message) || "The payment was not completed. Try again.");
      button.disabled = false;
    }
  });

  render().catch(function () {
    show("The payment form could not be loaded. Reload the page to try again.");
  });
})();
