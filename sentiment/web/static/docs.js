// Start-up script of /docs, served as a file so the page runs under a CSP with no inline script.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/schema/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // the public validator is another host
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
