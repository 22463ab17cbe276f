// Start Swagger UI on this service's OpenAPI document (service/docs.py).
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null  // no call to swagger.io's validator: nothing leaves this origin
  });
})();
