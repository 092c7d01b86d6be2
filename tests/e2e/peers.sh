# Registry and peers for the end-to-end scripts, each peer driven through a
# named pipe with --json. Source after lib.sh, with $bin_dir and $registry
# (host:port) set; $peer_ttl (seconds, default 4) is the peers' lease;
# $registry_args (an array, optional) are more options of chat-registry.

# Runs a command without the script's ends of the peers' pipes: a process
# that inherited one would keep that peer from ever seeing the end of input.
declare -A peer_pid peer_fd
without_pipes() {
  local fd
  for fd in "${peer_fd[@]}"; do eval "exec $fd>&-"; done
  exec "$@"
}

# start_registry N: starts chat-registry on $registry with $work/registry.db
# and waits for its Nth start line in $work/registry.log.
start_registry() {
  (without_pipes "$bin_dir/chat-registry" --listen "$registry" \
    --db "$work/registry.db" ${registry_args[@]+"${registry_args[@]}"}) \
    >>"$work/registry.log" 2>&1 &
  registry_pid=$!
  pids+=("$registry_pid")
  wait_for_file "$work/registry.log" "start: listening" "$1"
}

# start_peer NAME [ARGS...]: runs chat-peer NAME reading $work/NAME.in (a
# named pipe held open by this script) and writing JSON to $work/NAME.out;
# its outbox and inbox live in $work/data. A restart keeps the earlier
# output as $work/NAME.before-restart.log (then .2, .3, ...).
start_peer() {
  local name=$1
  shift
  if [ -n "${peer_fd[$name]:-}" ]; then  # A restart: a fresh pipe.
    eval "exec ${peer_fd[$name]}>&-"
    unset "peer_fd[$name]"
  fi
  rm -f "$work/$name.in"
  if [ -e "$work/$name.out" ]; then
    local n=1 kept="$work/$name.before-restart.log"
    while [ -e "$kept" ]; do n=$((n + 1)); kept="$work/$name.before-restart.$n.log"; done
    mv "$work/$name.out" "$kept"
  fi
  mkfifo "$work/$name.in"
  (without_pipes "$bin_dir/chat-peer" --name "$name" --registry "$registry" \
    --listen 127.0.0.1:0 --ttl "${peer_ttl:-4}" --json --data-dir "$work/data" "$@") \
    <"$work/$name.in" >"$work/$name.out" 2>>"$work/$name.err" &
  peer_pid[$name]=$!
  pids+=("$!")
  local fd
  exec {fd}>"$work/$name.in"
  peer_fd[$name]=$fd
}

say() {  # say NAME LINE: types LINE into NAME's stdin
  echo "$2" >&"${peer_fd[$1]}"
}
