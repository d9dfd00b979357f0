/* The "kubia" test server (after the book's example): answers every HTTP request on
 * :8080 with "You've hit <hostname>\n" and logs one line per request to stdout.
 * Static, single-threaded, one connection at a time; a slow client is dropped after a
 * receive timeout so it cannot hold the server. Exits 0 on SIGTERM/SIGINT (it runs as
 * PID 1 of its container, which has no default signal actions). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { kPort = 8080, kMaxRequest = 16384 };

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads until the end of the request head; returns its length, or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap) {
  size_t len = 0;
  while (len < cap - 1) {
    ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return len > 0 ? (ssize_t)len : -1;
    len += (size_t)r;
    buf[len] = '\0';
    if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n")) break;
  }
  buf[len] = '\0';
  return (ssize_t)len;
}

static void serve(int fd, const struct sockaddr_in *peer) {
  static char req[kMaxRequest];
  struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ssize_t n = read_head(fd, req, sizeof req);
  char line[256] = "";
  if (n > 0) {
    size_t l = strcspn(req, "\r\n");
    if (l >= sizeof line) l = sizeof line - 1;
    memcpy(line, req, l);
    line[l] = '\0';
  }
  char host[256];
  if (gethostname(host, sizeof host) != 0) strcpy(host, "unknown");
  host[sizeof host - 1] = '\0';
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &peer->sin_addr, ip, sizeof ip);
  printf("Received request from %s:%u: %s\n", ip, ntohs(peer->sin_port), n > 0 ? line : "(no request)");
  if (n <= 0) return;
  char body[320], head[256];
  int blen = snprintf(body, sizeof body, "You've hit %s\n", host);
  int hlen = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n",
                      blen);
  if (send_all(fd, head, (size_t)hlen) == 0 && strncmp(line, "HEAD ", 5) != 0) send_all(fd, body, (size_t)blen);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) {
    perror("kubia: socket");
    return 1;
  }
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(kPort), .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(ls, 128) != 0) {
    perror("kubia: bind/listen :8080");
    return 1;
  }
  printf("Kubia server starting on :%d\n", kPort);
  for (;;) {
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int fd = accept4(ls, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("kubia: accept");
      return 1;
    }
    serve(fd, &peer);
    close(fd);
  }
}
