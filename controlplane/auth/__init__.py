"""Identity: OIDC bearer tokens verified against the issuer's JWKS, and who may do what."""
