// Starts Swagger UI on the server's own document. Nothing is fetched from
// anywhere else: the validator badge, which would send the document to
// validator.swagger.io, is off, and authorisation is not persisted, so a
// token given to Authorize lives only as long as the tab.
window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false,
  tryItOutEnabled: false,
  displayRequestDuration: true,
  docExpansion: 'list',
  defaultModelsExpandDepth: 0,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
