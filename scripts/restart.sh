#!/usr/bin/env bash
# Rolling restart of wsgate with zero downtime. Needs listen.reuse_port = true
# in the running process's configuration (and the new one's), so that two
# processes can listen on the same address and port:
#   1. check CONFIG with the new binary (wsgate -t): on an error nothing happens;
#   2. start the new binary on the same address and port, logging to LOG;
#   3. wait until it listens (its "event=listening" line);
#   4. SIGUSR1 the old process: it closes its listening sockets at once, so
#      the kernel hands every new connection to the new process, then closes
#      its sessions with 4200 "server draining, reconnect" spread over
#      shutdown.drain_ms, and clients reconnect to the new process;
#   5. wait until the old process has exited (it exits 0 once the last session is gone).
# Prints the new process id on stdout.
#
# usage: scripts/restart.sh OLD_PID [BINARY [CONFIG [LOG]]]
#   BINARY  default build/wsgate;  CONFIG  default conf/wsgate.conf;  LOG  default wsgate.log (appended)
#   WSGATE_RESTART_TIMEOUT  seconds to wait for the old process (default 120)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 4 ]; then
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
old_pid=$1
binary=${2:-build/wsgate}
config=${3:-conf/wsgate.conf}
log=${4:-wsgate.log}
timeout=${WSGATE_RESTART_TIMEOUT:-120}

kill -0 "$old_pid" 2>/dev/null || { echo "restart: no process $old_pid" >&2; exit 1; }
"$binary" -t -c "$config" >/dev/null

lines_before=$( (wc -l <"$log") 2>/dev/null || echo 0)
nohup "$binary" -c "$config" >>"$log" 2>&1 </dev/null &
new_pid=$!

# 3. listening: the new process's own "event=listening" line, within 10 s
for _ in $(seq 100); do
	if ! kill -0 "$new_pid" 2>/dev/null; then
		echo "restart: the new wsgate exited during start-up; see $log (the old one keeps running)" >&2
		exit 1
	fi
	if tail -n +"$((lines_before + 1))" "$log" | grep -q 'event=listening'; then
		break
	fi
	sleep 0.1
done
if ! tail -n +"$((lines_before + 1))" "$log" | grep -q 'event=listening'; then
	echo "restart: the new wsgate ($new_pid) does not listen after 10 s; stopping it" >&2
	kill -TERM "$new_pid"
	exit 1
fi

# 4, 5. drain the old one and wait for it
kill -USR1 "$old_pid"
# gone, or a zombie its parent has not reaped yet
is_running() {
	kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}
deadline=$((SECONDS + timeout))
while is_running "$old_pid"; do
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "restart: the old wsgate ($old_pid) still runs after ${timeout} s" >&2
		exit 1
	fi
	sleep 0.1
done
echo "$new_pid"
