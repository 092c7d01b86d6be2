# What the lab's chat tests (run_lab_peer.sh, run_squatter.sh) share: their
# arguments, tests/e2e/lib.sh, Python stubs from the lab's own chat.proto, a
# registry, and chat-peers in --json mode fed through named pipes.
#
# Sourced with the test's arguments: source lab_lib.sh "$@", where they are
# BIN_DIR REPO_ROOT PROTOC GRPC_PYTHON_PLUGIN. Sets bin_dir, repo, protoc,
# plugin, and (through lib.sh) work, pids, step, fail, wait_for_*.

if [[ $# -ne 4 ]]; then
  echo "usage: $0 BIN_DIR REPO_ROOT PROTOC GRPC_PYTHON_PLUGIN" >&2
  exit 2
fi
bin_dir=$1 repo=$2 protoc=$3 plugin=$4
source "$repo/tests/e2e/lib.sh"

# Generates the lab's chat.proto stubs into $work/py, on PYTHONPATH.
lab_chat_stubs() {
  step "generate the lab's stubs from its chat.proto"
  mkdir -p "$work/py"
  "$protoc" -I "$repo/tests/lab/proto" --python_out="$work/py" \
    --grpc_out="$work/py" --plugin=protoc-gen-grpc="$plugin" chat.proto
  export PYTHONPATH="$work/py"
}

# Starts a registry on a free loopback port; sets and exports CHAT_REGISTRY.
# Its log is $work/registry.log, its admin token $work/admin.token.
start_registry() {
  registry=127.0.0.1:$(free_port)
  export CHAT_REGISTRY=$registry
  step "registry on $registry"
  "$bin_dir/chat-registry" --listen "$registry" --db "$work/registry.db" \
    2>"$work/registry.log" &
  pids+=("$!")
  wait_for_file "$work/registry.log" "start: listening"
}

# start_json_peer NAME: chat-peer NAME on a free loopback port, --json, data
# in $work/NAME-data, stdin from the pipe $work/NAME.in, output in
# $work/NAME.out and $work/NAME.err; returns once it is ready. Sets peer_pid
# and peer_fd (write lines to it to type them).
start_json_peer() {
  local name=$1
  mkfifo "$work/$name.in"
  "$bin_dir/chat-peer" --name "$name" --listen 127.0.0.1:0 --json \
    --data-dir "$work/$name-data" \
    <"$work/$name.in" >"$work/$name.out" 2>"$work/$name.err" &
  peer_pid=$!
  pids+=("$peer_pid")
  exec {peer_fd}>"$work/$name.in"
  wait_for_line "$work/$name.out" '"event":"ready"' "$peer_pid"
}
