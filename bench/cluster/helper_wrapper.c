/* The benchmark's wrapper for the rule tools a proxy runs (iptables, iptables-save,
 * iptables-restore, ip6tables*, nft): placed first in the proxy's PATH under the tool's
 * name, it runs the real tool (KB_REAL_DIR/<name>, a symlink to the legacy or nft
 * variant) as its child and appends one line to KB_HELPER_LOG when it ends:
 *
 *     <name> <peak RSS KiB> <user s> <system s> <wall s> <exit status>
 *
 * so the memory and CPU a proxy spends in helper processes are measured, not only its
 * own. The cost it adds per call is one fork and one wait (well under a millisecond).
 * The child dies with the wrapper (PR_SET_PDEATHSIG); SIGTERM and SIGINT are passed on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child = -1;

static void forward(int sig) {
  if (child > 0) kill(child, sig);
}

int main(int argc, char** argv) {
  (void)argc;
  char self[4096];
  snprintf(self, sizeof self, "%s", argv[0]);
  const char* name = basename(self);
  const char* dir = getenv("KB_REAL_DIR");
  if (!dir) {
    fprintf(stderr, "helper_wrapper: KB_REAL_DIR is not set\n");
    return 127;
  }
  char real[4096];
  snprintf(real, sizeof real, "%s/%s", dir, name);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const pid_t parent = getpid();
  child = fork();
  if (child < 0) {
    perror("helper_wrapper: fork");
    return 127;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    execv(real, argv);  /* argv[0] stays the tool's name: xtables-*-multi dispatch on it */
    fprintf(stderr, "helper_wrapper: exec %s: %s\n", real, strerror(errno));
    _exit(127);
  }
  signal(SIGTERM, forward);
  signal(SIGINT, forward);
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(child, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("helper_wrapper: wait4");
      return 127;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const char* logp = getenv("KB_HELPER_LOG");
  if (logp) {
    char line[512];
    int n = snprintf(line, sizeof line, "%s %ld %.6f %.6f %.6f %d\n", name, ru.ru_maxrss,
                     ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
                     (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    int fd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      if (write(fd, line, (size_t)n) < 0) { /* nothing to do about it */ }
      close(fd);
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}
