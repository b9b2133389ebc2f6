#!/bin/sh
# Daily AIDE check (homelab.nixos role host_security): compares the files with
# the baseline, keeps the report and exports the result for Prometheus.
#   homelab-aide-check.sh CONFIG REPORT TEXTFILE_DIR
set -u
config=$1 report=$2 textfile_dir=$3
aide --config "$config" --check > "$report.new" 2>&1
rc=$?
mv "$report.new" "$report"
# aide's exit code: bit 1 added, 2 removed, 4 changed; 14 and above are errors.
count() { sed -n "s/^[[:space:]]*$1 entries:[[:space:]]*\([0-9][0-9]*\).*/\1/p" "$report" | head -n 1; }
added=$(count Added) removed=$(count Removed) changed=$(count Changed)
ok=1
[ "$rc" -ge 14 ] && ok=0
if [ -d "$textfile_dir" ]; then
  tmp="$textfile_dir/homelab_aide.prom.$$"
  {
    echo "# HELP homelab_aide_check_success 1 when the last AIDE check ran (whatever it found)."
    echo "# TYPE homelab_aide_check_success gauge"
    echo "homelab_aide_check_success $ok"
    echo "# HELP homelab_aide_last_check_timestamp_seconds When AIDE last checked the baseline."
    echo "# TYPE homelab_aide_last_check_timestamp_seconds gauge"
    echo "homelab_aide_last_check_timestamp_seconds $(date +%s)"
    echo "# HELP homelab_aide_entries Entries that differ from the baseline, by kind."
    echo "# TYPE homelab_aide_entries gauge"
    echo "homelab_aide_entries{kind=\"added\"} ${added:-0}"
    echo "homelab_aide_entries{kind=\"removed\"} ${removed:-0}"
    echo "homelab_aide_entries{kind=\"changed\"} ${changed:-0}"
  } > "$tmp" && mv "$tmp" "$textfile_dir/homelab_aide.prom"
fi
[ "$ok" -eq 1 ] || exit "$rc"
exit 0
