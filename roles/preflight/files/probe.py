# preflight's one read-only probe of the host (run with python3 -c, argument: a JSON object).
# Prints one JSON object with what every check of tasks/check.yml reads; changes nothing.
import glob
import gzip
import json
import os
import sys

args = json.loads(sys.argv[1])


def read(path, mode='r'):
    try:
        with open(path, mode) as f:
            return f.read()
    except (IOError, OSError):
        return None


# Free space of the nearest existing parent of the K3s data dir (it may not exist yet).
path = args['data_dir']
while not os.path.exists(path):
    path = os.path.dirname(path)
st = os.statvfs(path)

# NVIDIA GPUs: PCI vendor 0x10de with a display class (0x03xxxx).
gpus = []
pci = args['pci_dir']
for dev in sorted(os.listdir(pci)) if os.path.isdir(pci) else []:
    vendor = (read(os.path.join(pci, dev, 'vendor')) or '').strip()
    klass = (read(os.path.join(pci, dev, 'class')) or '').strip()
    if vendor == '0x10de' and klass.startswith('0x03'):
        gpus.append(dev)

# cgroup v2: the root's controller list; v1: /proc/cgroups.
v2 = os.path.exists('/sys/fs/cgroup/cgroup.controllers')
cgroups = read('/sys/fs/cgroup/cgroup.controllers' if v2 else '/proc/cgroups') or ''

# The running kernel's configuration: which of the wanted options are y or m.
source, text = '', None
if os.path.exists('/proc/config.gz'):
    source, text = '/proc/config.gz', gzip.open('/proc/config.gz', 'rt', errors='replace').read()
elif os.path.exists('/boot/config-' + args['kernel']):
    source = '/boot/config-' + args['kernel']
    text = read(source) or ''
wanted = set(args['options'])
set_options = []
for line in (text or '').splitlines():
    name, sep, value = line.partition('=')
    if sep and name in wanted and value.strip() in ('y', 'm'):
        set_options.append(name)

# Secure Boot (GPU nodes): the EFI variable holds 4 attribute bytes, then 1 when it is on.
secure_boot = None
if args['gpu_node']:
    found = sorted(glob.glob('/sys/firmware/efi/efivars/SecureBoot-*'))
    data = read(found[0], 'rb') if found else None
    if data:
        secure_boot = bytearray(data)[-1] == 1

print(json.dumps({
    'uid': os.getuid(),
    'jetson': os.path.exists(args['jetson_release_file']),
    'disk': {'path': path, 'free': st.f_bavail * st.f_frsize},
    'gpus': gpus,
    'cgroup': {'version': 2 if v2 else 1, 'text': cgroups},
    'kernel_config': {'source': source, 'set': set_options},
    # Without a kernel config: the loaded modules.
    'modules': [] if source else sorted(os.listdir('/sys/module')) if os.path.isdir('/sys/module') else [],
    'secure_boot': secure_boot,
    'nouveau': os.path.exists('/sys/module/nouveau'),
}))
