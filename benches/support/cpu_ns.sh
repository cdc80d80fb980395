# Sourced by the load benchmarks (benches/run.sh, benches/perf_phases.sh).
# cpu_ns PID: the CPU time (ns) process PID has used so far, over all its
# threads, from /proc/PID/task/*/schedstat.
cpu_ns() {
  local total=0 t v
  for t in /proc/"$1"/task/*/schedstat; do
    read -r v _ <"$t" 2>/dev/null || continue
    total=$((total + v))
  done
  echo "$total"
}
