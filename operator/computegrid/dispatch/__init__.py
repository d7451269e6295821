"""Remote workloads on member clusters: the Job spec and create-or-adopt.

``build_job_spec`` is pure (mirroring is in ``computegrid.lifecycle``); ``create_or_adopt``
talks to a member through the ``JobClient`` protocol.
"""

from computegrid.dispatch.remote import (
    JobClient,
    Remote,
    create_or_adopt,
)
from computegrid.dispatch.spec import (
    ANN_BACKOFF_LIMIT,
    ANN_SOURCE,
    DEFAULT_TENANT_TEMPLATE,
    LABEL_MANAGED_BY,
    LABEL_TENANT,
    MANAGER,
    backoff_limit,
    build_job_spec,
    check_tenant_template,
    remote_name,
    tenant_namespace,
)
from computegrid.dispatch.tenancy import ForeignNamespace, TenantNamespace, tenant_for

__all__ = [
    "ANN_BACKOFF_LIMIT",
    "ANN_SOURCE",
    "DEFAULT_TENANT_TEMPLATE",
    "LABEL_MANAGED_BY",
    "LABEL_TENANT",
    "MANAGER",
    "ForeignNamespace",
    "JobClient",
    "Remote",
    "TenantNamespace",
    "backoff_limit",
    "build_job_spec",
    "check_tenant_template",
    "create_or_adopt",
    "remote_name",
    "tenant_for",
    "tenant_namespace",
]
