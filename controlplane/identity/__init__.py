"""Identity provider administration: Keycloak groups and users, through the admin REST API."""
