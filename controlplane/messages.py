"""Every message the control plane shows a person, in English and Swedish, in one catalogue.

A message is a key into :data:`CATALOGUE` plus named parameters; it is rendered only when a
response is written, in the language the caller asked for with ``Accept-Language`` (English by
default, Swedish for ``sv``). Errors carry a :class:`Message` instead of a formatted string, so
the same error reads right in both languages and tests can check both (every key must have both
translations with the same parameters: ``tests/unit/controlplane/test_messages.py``).

Parameters are values, not sentences: a parameter that is itself text for a person (a state
name, say) is translated through its own key (see :func:`state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from controlplane.costs.messages import MESSAGES as COSTS_MESSAGES
from controlplane.notebooks.messages import MESSAGES as NOTEBOOK_MESSAGES

Language = Literal["en", "sv"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "sv")
DEFAULT_LANGUAGE: Final[Language] = "en"

CATALOGUE: Final[dict[str, dict[Language, str]]] = {
    # Generic and framework errors
    "http.not_found": {"en": "Not Found", "sv": "Hittades inte"},
    "http.method_not_allowed": {
        "en": "Method Not Allowed",
        "sv": "Metoden är inte tillåten",
    },
    "internal_error": {
        "en": "An unexpected error occurred; it has been logged.",
        "sv": "Ett oväntat fel inträffade; det har loggats.",
    },
    "invalid_body": {"en": "body: {detail}", "sv": "body: {detail}"},
    "invalid_request": {"en": "invalid request", "sv": "ogiltig begäran"},
    "invalid_field": {"en": "{field}: {message}", "sv": "{field}: {message}"},
    "validation.value": {
        # pydantic's own explanation stays as pydantic words it (English): it names the rule.
        "en": "{field}: {message}",
        "sv": "{field}: ogiltigt värde ({message})",
    },
    "database_busy": {
        "en": "the database is busy with other changes; try again in {retry_after} s",
        "sv": "databasen är upptagen med andra ändringar; försök igen om {retry_after} s",
    },
    "database_unreachable": {
        "en": "database unreachable: {error}",
        "sv": "databasen går inte att nå: {error}",
    },
    # Authentication and authorization
    "auth.bearer_required": {
        "en": "a bearer token is required (Authorization: Bearer <token>)",
        "sv": "en bearer-token krävs (Authorization: Bearer <token>)",
    },
    "auth.platform_admin_required": {
        "en": "this needs the platform-admin role",
        "sv": "detta kräver rollen platform-admin",
    },
    "auth.not_tenant_member": {
        "en": "you are not a member of tenant {slug!r}; ask one of its admins to add you",
        "sv": "du är inte medlem i miljön {slug!r}; be någon av dess administratörer att lägga "
        "till dig",
    },
    "auth.tenant_admin_required": {
        "en": "this needs the admin role in tenant {slug!r} (group {group})",
        "sv": "detta kräver administratörsrollen i miljön {slug!r} (gruppen {group})",
    },
    "auth.no_organisation": {
        "en": "your account has no organisation_number claim, so it is not linked to an agency; "
        "ask your identity administrator to set it",
        "sv": "ditt konto saknar organisationsnummer (organisation_number) och är inte kopplat "
        "till någon myndighet; be din identitetsadministratör att lägga till det",
    },
    "auth.bad_organisation": {
        "en": "the organisation_number claim {claim!r} in your token is not a valid Swedish "
        "organisation number",
        "sv": "organisationsnumret {claim!r} i din token (organisation_number) är ogiltigt",
    },
    "auth.no_subject": {
        "en": "token has no subject (sub)",
        "sv": "token saknar subjekt (sub)",
    },
    "auth.malformed_token": {
        "en": "malformed bearer token: {error}",
        "sv": "felformad bearer-token: {error}",
    },
    "auth.bad_algorithm": {
        "en": "token algorithm must be RS256, not {algorithm!r}",
        "sv": "tokens algoritm måste vara RS256, inte {algorithm!r}",
    },
    "auth.no_key_id": {
        "en": "token header has no key id (kid)",
        "sv": "tokens huvud saknar nyckel-id (kid)",
    },
    "auth.unknown_key": {
        "en": "token is signed with unknown key id {kid!r}",
        "sv": "token är signerad med okänt nyckel-id {kid!r}",
    },
    "auth.expired": {"en": "token has expired", "sv": "token har gått ut"},
    "auth.wrong_audience": {
        "en": "token audience does not include {audience!r}",
        "sv": "tokens mottagare (aud) innehåller inte {audience!r}",
    },
    "auth.wrong_issuer": {
        "en": "token issuer is not {issuer!r}",
        "sv": "tokens utfärdare är inte {issuer!r}",
    },
    "auth.invalid_token": {"en": "invalid token: {error}", "sv": "ogiltig token: {error}"},
    "auth.idp_unreachable": {
        "en": "identity provider unreachable at {url}: {error}",
        "sv": "identitetsleverantören går inte att nå på {url}: {error}",
    },
    "auth.idp_bad_document": {
        "en": "identity provider returned a non-object from {url}",
        "sv": "identitetsleverantören svarade inte med ett JSON-objekt från {url}",
    },
    "auth.idp_wrong_issuer": {
        "en": "discovery document names issuer {found!r}, expected {expected!r}",
        "sv": "discovery-dokumentet anger utfärdaren {found!r}, väntade {expected!r}",
    },
    "auth.idp_bad_jwks": {
        "en": "unusable JWKS at {url}: {error}",
        "sv": "oanvändbar JWKS på {url}: {error}",
    },
    # Sandbox requests
    "request.not_found": {
        "en": "no sandbox request {id}",
        "sv": "ingen ansökan med id {id}",
    },
    "request.own_agency_only": {
        "en": "you may only request sandboxes for your own agency ({organisation_number})",
        "sv": "du kan bara ansöka om sandlådor för din egen organisation ({organisation_number})",
    },
    "request.unacceptable_risk": {
        "en": "AI systems with unacceptable risk are prohibited by the EU AI Act (article 5) and "
        "cannot be hosted on Sandlåda; if your assessment is uncertain, contact the platform team",
        "sv": "AI-system med oacceptabel risk är förbjudna enligt EU:s AI-förordning (artikel 5) "
        "och kan inte drivas på Sandlåda; kontakta plattformsteamet om bedömningen är osäker",
    },
    "request.end_date_past": {
        "en": "must be after today ({today})",
        "sv": "måste vara efter i dag ({today})",
    },
    "request.end_date_far": {
        "en": "must be at most {years} years ahead",
        "sv": "får ligga högst {years} år fram i tiden",
    },
    "request.not_pending": {
        "en": "sandbox request {id} is {state}, so it cannot be {action}; only pending requests "
        "can",
        "sv": "ansökan {id} är {state}, så den kan inte {action}; det går bara med ansökningar "
        "som väntar på beslut",
    },
    "request.only_requester_withdraws": {
        "en": "only the person who submitted a request can withdraw it",
        "sv": "bara den som skickade ansökan kan återkalla den",
    },
    # Capacity
    "capacity.unknown_model": {
        "en": "unknown GPU model {gpu_model!r}; known models: {models}",
        "sv": "okänd GPU-modell {gpu_model!r}; kända modeller: {models}",
    },
    "capacity.none_registered": {"en": "none registered", "sv": "inga registrerade"},
    "capacity.not_found": {
        "en": "no capacity is registered for GPU model {gpu_model!r}",
        "sv": "ingen kapacitet är registrerad för GPU-modellen {gpu_model!r}",
    },
    "capacity.negative": {"en": "must not be negative", "sv": "får inte vara negativt"},
    "capacity.below_granted": {
        "en": "{granted} {gpu_model} GPUs are granted to tenants; total cannot go below what "
        "that needs ({needed})",
        "sv": "{granted} {gpu_model}-GPU:er är beviljade till miljöer; totalen kan inte bli "
        "lägre än vad det kräver ({needed})",
    },
    "capacity.exceeded": {
        "en": "{gpus} {gpu_model} GPUs asked but only {free} are free ({total} in the cluster, "
        "{granted} granted)",
        "sv": "{gpus} {gpu_model}-GPU:er begärdes men bara {free} är lediga ({total} i klustret, "
        "{granted} beviljade)",
    },
    # Tenants
    "tenant.not_found": {"en": "no tenant {slug!r}", "sv": "ingen miljö {slug!r}"},
    "tenant.invalid_transition": {
        "en": "tenant {slug} is {state}, so it cannot be {action}",
        "sv": "miljön {slug} är {state}, så den kan inte {action}",
    },
    "tenant.resource_missing": {
        "en": "the Tenant resource does not exist (yet)",
        "sv": "Tenant-resursen finns inte (ännu)",
    },
    "tenant.deleted": {"en": "deleted", "sv": "borttagen"},
    "tenant.setup_pending": {
        "en": "set-up is not finished ({what}: {error}); the status sync retries it",
        "sv": "uppsättningen är inte klar ({what}: {error}); statussynken försöker igen",
    },
    # The identity provider (Keycloak admin API) and the Kubernetes cluster: a service the
    # platform depends on is unreachable, refused, or not configured. {what} names the call
    # and {error} the client's own report; both are diagnostics and stay as they are.
    "identity.unavailable": {
        "en": "the identity provider (Keycloak) cannot be reached or refused the control "
        "plane's request; nothing was changed, try again in a while ({what}: {error})",
        "sv": "identitetstjänsten (Keycloak) svarar inte eller nekade kontrollplanets anrop; "
        "inget har ändrats, försök igen om en stund ({what}: {error})",
    },
    "identity.group_vanished": {
        "en": "the identity provider (Keycloak) lost group {group} while it was being created; "
        "nothing was changed, try again in a while",
        "sv": "identitetstjänsten (Keycloak) tappade gruppen {group} medan den skapades; inget "
        "har ändrats, försök igen om en stund",
    },
    "identity.signin_failed": {
        "en": "the sign-in service (Keycloak) answered HTTP {status}; try again in a while",
        "sv": "inloggningstjänsten (Keycloak) svarade HTTP {status}; försök igen om en stund",
    },
    "identity.not_configured": {
        "en": "identity administration is not configured on this control plane "
        "(SANDLADA_KEYCLOAK_URL), so members cannot be managed",
        "sv": "identitetsadministration är inte konfigurerad i kontrollplanet "
        "(SANDLADA_KEYCLOAK_URL), så medlemmar kan inte hanteras",
    },
    "cluster.not_configured": {
        "en": "no Kubernetes cluster is configured (SANDLADA_KUBECONFIG); tenants are recorded "
        "and provisioned once one is",
        "sv": "inget Kubernetes-kluster är konfigurerat (SANDLADA_KUBECONFIG); miljöer "
        "registreras och skapas när ett kluster finns",
    },
    "cluster.unavailable": {
        "en": "Kubernetes is unavailable ({what}: {status} {reason}); try again shortly",
        "sv": "Kubernetes svarar inte just nu ({what}: {status} {reason}); försök igen om en stund",
    },
    "cluster.unreachable": {
        "en": "Kubernetes is unreachable ({what}: {error}); try again shortly",
        "sv": "Kubernetes går inte att nå just nu ({what}: {error}); försök igen om en stund",
    },
    "cluster.refused": {
        "en": "Kubernetes refused to {what}: {status} {reason}",
        "sv": "Kubernetes nekade anropet ({what}): {status} {reason}",
    },
    "cluster.watch_ended": {
        "en": "the Kubernetes watch on Tenants ended ({error})",
        "sv": "Kubernetes-bevakningen av Tenant-resurser avbröts ({error})",
    },
    # States and actions, used as parameters of the messages above
    "state.pending": {"en": "pending", "sv": "väntande"},
    "state.approved": {"en": "approved", "sv": "godkänd"},
    "state.rejected": {"en": "rejected", "sv": "avslagen"},
    "state.withdrawn": {"en": "withdrawn", "sv": "återkallad"},
    "state.provisioning": {"en": "provisioning", "sv": "under uppsättning"},
    "state.ready": {"en": "ready", "sv": "klar"},
    "state.suspended": {"en": "suspended", "sv": "pausad"},
    "state.deleting": {"en": "deleting", "sv": "på väg att tas bort"},
    "state.deleted": {"en": "deleted", "sv": "borttagen"},
    "action.approved": {"en": "approved", "sv": "godkännas"},
    "action.rejected": {"en": "rejected", "sv": "avslås"},
    "action.withdrawn": {"en": "withdrawn", "sv": "återkallas"},
    "action.suspended": {"en": "suspended", "sv": "pausas"},
    "action.resumed": {"en": "resumed", "sv": "återupptas"},
    "action.offboarded": {"en": "offboarded", "sv": "avvecklas"},
    # Notebooks (issue 6): kept beside their code in controlplane/notebooks/messages.py.
    **NOTEBOOK_MESSAGES,
    **COSTS_MESSAGES,
}


@dataclass(frozen=True)
class Message:
    """A catalogue key with its parameters; a parameter may itself be a Message."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key not in CATALOGUE:
            raise KeyError(f"message {self.key!r} is not in the catalogue")

    def render(self, language: Language = DEFAULT_LANGUAGE) -> str:
        params = {
            name: value.render(language) if isinstance(value, Message) else value
            for name, value in self.params.items()
        }
        return CATALOGUE[self.key][language].format(**params)

    def __str__(self) -> str:
        return self.render(DEFAULT_LANGUAGE)


def message(key: str, **params: object) -> Message:
    return Message(key, params)


def state(value: str) -> Message:
    """A request or tenant state, as a word a person reads."""
    return Message(f"state.{value}")


def action(value: str) -> Message:
    return Message(f"action.{value}")


def negotiate(accept_language: str | None) -> Language:
    """The language for an ``Accept-Language`` header: its best supported choice, else English.

    Quality values order the choices; ``sv-SE`` or ``sv_FI`` count as Swedish, ``*`` and
    anything unknown as no preference.
    """
    if not accept_language:
        return DEFAULT_LANGUAGE
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().replace("_", "-").split("-")[0].lower()
        if primary and quality > 0:
            choices.append((-quality, position, primary))
    for _, _, primary in sorted(choices):
        if primary == "sv":
            return "sv"
        if primary == "en":
            return "en"
    return DEFAULT_LANGUAGE
