#!/bin/sh
# Stand-in for nvidia-smi used by the integration test: it is not NVIDIA's tool.
# FAKE_SMI_MODE picks the behaviour; every call is appended to $FAKE_SMI_CALLS.
here="$(dirname "$0")"
echo "$*" >>"${FAKE_SMI_CALLS:-/dev/null}"
case "$(cat "$here/mode" 2>/dev/null)" in
  mismatch)
    echo "Failed to initialize NVML: Driver/library version mismatch"
    exit 18 ;;
  nodriver)
    echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
    exit 9 ;;
  *)
    cat "$here/nvidia-smi-q-8gpu.xml" ;;
esac
