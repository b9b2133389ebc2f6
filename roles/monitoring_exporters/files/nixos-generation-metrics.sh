# Writes NixOS generation metrics for node exporter's textfile collector:
# the current system generation, when it was built, and whether the running
# kernel differs from the current system's (a reboot is needed).
# TEXTFILE_DIR: collector directory; ROOT: prefix for tests (default /).
set -eu
root=${ROOT:-}
dir=${TEXTFILE_DIR:?TEXTFILE_DIR is not set}
link=$(readlink "$root/nix/var/nix/profiles/system")
generation=${link##*/}
generation=${generation#system-}
generation=${generation%-link}
case $generation in
  '' | *[!0-9]*) echo "cannot read the system generation from $link" >&2; exit 1 ;;
esac
built=$(stat -c %Y "$root/nix/var/nix/profiles/system-$generation-link")
reboot=0
for part in kernel initrd kernel-modules; do
  booted=$(readlink "$root/run/booted-system/$part" 2>/dev/null || true)
  current=$(readlink "$root/run/current-system/$part" 2>/dev/null || true)
  [ "$booted" = "$current" ] || reboot=1
done
tmp=$(mktemp "$dir/.homelab_nixos.XXXXXX")
cat >"$tmp" <<METRICS
# HELP homelab_nixos_generation Current NixOS system generation.
# TYPE homelab_nixos_generation gauge
homelab_nixos_generation $generation
# HELP homelab_nixos_generation_timestamp_seconds When the current system generation was created.
# TYPE homelab_nixos_generation_timestamp_seconds gauge
homelab_nixos_generation_timestamp_seconds $built
# HELP homelab_nixos_reboot_required 1 when the booted kernel, initrd or modules differ from the current system's.
# TYPE homelab_nixos_reboot_required gauge
homelab_nixos_reboot_required $reboot
METRICS
chmod 0644 "$tmp"
mv "$tmp" "$dir/homelab_nixos.prom"
