"""Every message of the notebooks API, in English and Swedish, in one place.

The control plane's catalogue (`controlplane.messages.CATALOGUE`) includes these keys, so errors
carry ``message("notebooks.…", …)`` and are rendered in the caller's ``Accept-Language``. Pure
data (no imports of ours), so the catalogue can import it. :func:`text` renders both languages
into one string for the one place a `Message` cannot go: pydantic validator errors.
"""

from __future__ import annotations

from typing import Final, Literal

Language = Literal["en", "sv"]

MESSAGES: Final[dict[str, dict[Language, str]]] = {
    "notebooks.quota_gpu": {
        "en": "GPU quota exhausted: {used} of {granted} {model} in use; profile {profile!r} "
        "needs {need}",
        "sv": "GPU-kvoten räcker inte: {used} av {granted} {model} används; profilen "
        "{profile!r} behöver {need}",
    },
    "notebooks.quota_cpu": {
        "en": "CPU quota exhausted: {used} of {granted} cores in use; profile {profile!r} "
        "needs {need}",
        "sv": "CPU-kvoten räcker inte: {used} av {granted} kärnor används; profilen "
        "{profile!r} behöver {need}",
    },
    "notebooks.quota_memory": {
        "en": "memory quota exhausted: {used} of {granted} GiB in use; profile {profile!r} "
        "needs {need} GiB",
        "sv": "minneskvoten räcker inte: {used} av {granted} GiB används; profilen "
        "{profile!r} behöver {need} GiB",
    },
    "notebooks.quota_storage": {
        "en": "storage quota exhausted: {used} of {granted} GiB in use; the home volume of "
        "profile {profile!r} needs {need} GiB (delete an old home volume or ask for more)",
        "sv": "lagringskvoten räcker inte: {used} av {granted} GiB används; hemkatalogen för "
        "profilen {profile!r} behöver {need} GiB (ta bort en gammal hemkatalog eller be om mer)",
    },
    "notebooks.quota_apiserver": {
        "en": "the cluster refused the notebook because the tenant's quota is used up: {reason}",
        "sv": "klustret avvisade notebooken eftersom miljöns kvot är förbrukad: {reason}",
    },
    "notebooks.tenant_not_ready": {
        "en": "tenant {slug!r} is {status}; notebooks can be launched once it is ready",
        "sv": "miljön {slug!r} har status {status}; notebooks kan startas när den är klar",
    },
    "notebooks.tenant_suspended": {
        "en": "tenant {slug!r} is suspended; no notebooks can be launched until a platform "
        "admin resumes it",
        "sv": "miljön {slug!r} är pausad; inga notebooks kan startas förrän en "
        "plattformsadministratör återupptar den",
    },
    "notebooks.no_namespace": {
        "en": "tenant {slug!r} has no namespace on the cluster yet; try again shortly",
        "sv": "miljön {slug!r} har inget namespace i klustret ännu; försök igen om en stund",
    },
    "notebooks.exists": {
        "en": "a notebook named {name!r} already exists in tenant {slug!r} ({phase}); choose "
        "another name (only its owner can start a stopped one again)",
        "sv": "det finns redan en notebook som heter {name!r} i miljön {slug!r} ({phase}); "
        "välj ett annat namn (bara ägaren kan starta en stoppad notebook igen)",
    },
    "notebooks.changed": {
        "en": "notebook {name!r} in tenant {slug!r} changed while it was being started again; "
        "try again",
        "sv": "notebooken {name!r} i miljön {slug!r} ändrades medan den startades om; försök igen",
    },
    "notebooks.not_found": {
        "en": "no notebook {name!r} in tenant {slug!r}",
        "sv": "ingen notebook {name!r} i miljön {slug!r}",
    },
    "notebooks.stop_needs_admin": {
        "en": "notebook {name!r} belongs to {owner}; stopping someone else's notebook needs the "
        "tenant's admin role",
        "sv": "notebooken {name!r} tillhör {owner}; att stoppa någon annans notebook kräver "
        "administratörsrollen i miljön",
    },
    "notebooks.bad_name": {
        "en": "{name!r} is not a valid notebook name: lowercase letters a-z, digits and '-', "
        "starting with a letter and not ending with '-', at most {max} characters",
        "sv": "{name!r} är inget giltigt namn: små bokstäver a-z, siffror och '-', börjar med "
        "en bokstav och slutar inte med '-', högst {max} tecken",
    },
    "notebooks.unknown_profile": {
        "en": "no profile {profile!r}; available: {known}",
        "sv": "det finns ingen profil {profile!r}; tillgängliga: {known}",
    },
    "notebooks.profile_tier": {
        "en": "profile {profile!r} is not available to tenants with data classification "
        "{tier!r} (allowed: {allowed})",
        "sv": "profilen {profile!r} är inte tillgänglig för miljöer med "
        "informationsklassning {tier!r} (tillåtna: {allowed})",
    },
    "notebooks.profile_groups": {
        "en": "profile {profile!r} is only for members of {groups}",
        "sv": "profilen {profile!r} är bara för medlemmar i {groups}",
    },
    "notebooks.profile_gpu_model": {
        "en": "profile {profile!r} runs on {wanted} GPUs, but tenant {slug!r} is granted {granted}",
        "sv": "profilen {profile!r} kör på {wanted}-GPU:er, men miljön {slug!r} har tilldelats "
        "{granted}",
    },
    "notebooks.profile_no_gpus": {
        "en": "profile {profile!r} needs {wanted} GPUs, but tenant {slug!r} has no GPUs granted",
        "sv": "profilen {profile!r} behöver {wanted}-GPU:er, men miljön {slug!r} har inga "
        "GPU:er tilldelade",
    },
}


def render(key: str, language: Language, **params: object) -> str:
    return MESSAGES[key][language].format(**params)


def text(key: str, **params: object) -> str:
    """The message in both languages, "English / Swedish"."""
    return f"{render(key, 'en', **params)} / {render(key, 'sv', **params)}"
