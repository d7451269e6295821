"""Remote workloads on member clusters: the Job spec, create-or-adopt, delete, mirroring.

``build_job_spec`` is pure (mirroring is in ``computegrid.lifecycle``); ``create_or_adopt``,
``find_copies`` and ``delete_remote`` talk to a member through the ``JobClient`` protocol.
"""

from computegrid.dispatch.remote import (
    JobClient,
    Remote,
    create_or_adopt,
    delete_remote,
    find_copies,
)
from computegrid.dispatch.spec import (
    ANN_BACKOFF_LIMIT,
    ANN_SOURCE,
    LABEL_MANAGED_BY,
    LABEL_TENANT,
    MANAGER,
    backoff_limit,
    build_job_spec,
    remote_name,
    tenant_namespace,
)

__all__ = [
    "ANN_BACKOFF_LIMIT",
    "ANN_SOURCE",
    "LABEL_MANAGED_BY",
    "LABEL_TENANT",
    "MANAGER",
    "JobClient",
    "Remote",
    "backoff_limit",
    "build_job_spec",
    "create_or_adopt",
    "delete_remote",
    "find_copies",
    "remote_name",
    "tenant_namespace",
]
