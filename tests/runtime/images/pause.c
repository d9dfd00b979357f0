/* The pod sandbox's init process (the "pause" image): holds the pod's namespaces, reaps
 * the zombies re-parented to it as PID 1, and exits 0 on SIGTERM or SIGINT.
 * Built static (gcc -static), so the image is this one file. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int install(int sig, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = sig == SIGCHLD ? SA_NOCLDSTOP | SA_RESTART : 0;
  return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    fprintf(stderr, "usage: pause (takes no arguments)\n");
    return 2;
  }
  if (getpid() != 1) fprintf(stderr, "pause: warning: not PID 1, zombies are not ours to reap\n");
  /* PID 1 gets no default signal action: without handlers SIGTERM would be ignored. */
  if (install(SIGTERM, on_stop) != 0 || install(SIGINT, on_stop) != 0 || install(SIGCHLD, on_child) != 0) {
    perror("pause: sigaction");
    return 1;
  }
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &old);
  /* sigsuspend closes the window between testing the flag and waiting. */
  while (!stop_requested) sigsuspend(&old);
  return 0;
}
