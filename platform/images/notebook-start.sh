#!/bin/sh
# Entry point of the notebook image (KubeSpawner's cmd): the tenant's kernel spec for the tenant
# this server works on (WORKBENCH_TENANT, set by the hub from the chosen profile), then the
# single-user server with that kernel as the only and default one.
set -eu
: "${WORKBENCH_TENANT:?the hub sets WORKBENCH_TENANT (the chosen tenant profile)}"
workbench kernels install --tenant "$WORKBENCH_TENANT" --user --api-url "${WORKBENCH_API_URL:?}"
kernel="workbench-$WORKBENCH_TENANT"
exec jupyterhub-singleuser \
  "--MappingKernelManager.default_kernel_name=$kernel" \
  "--KernelSpecManager.allowed_kernelspecs=$kernel" \
  "--KernelSpecManager.ensure_native_kernel=False" \
  "$@"
