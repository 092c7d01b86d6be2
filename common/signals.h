// Graceful shutdown on SIGINT/SIGTERM/SIGHUP (what Ctrl-C, `docker stop`
// and a closed terminal send).

#ifndef CHAT_COMMON_SIGNALS_H_
#define CHAT_COMMON_SIGNALS_H_

namespace chat {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and in every thread
// it starts afterwards. Call first thing in main(), before gRPC starts threads,
// so the signals wait for WaitForTerminationSignal() instead of killing us.
void BlockTerminationSignals();

// Waits until SIGINT, SIGTERM or SIGHUP arrives and returns its number.
int WaitForTerminationSignal();

}  // namespace chat

#endif  // CHAT_COMMON_SIGNALS_H_
