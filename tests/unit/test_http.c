/* The kept connection of lib/http.c (frc_http_request_on) with real libcurl
 * against a small HTTP/1.1 server on loopback, run by a thread here: it
 * answers GET /ok and GET /again with their path's text, keeps the
 * connection open, and after /leftover sends its answer and then, a moment
 * later, another whole response (a desynchronised server or middlebox).
 * Those bytes are no answer to the next request: it goes over a new
 * connection, while answers without leftovers keep the one connection. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "util.h"

struct server
{
  int listen_fd;
  int port;
  int connections; /* accepted so far */
  int stale_sent;  /* the leftover's second answer written */
  pthread_t thread;
};

static void
send_text(int fd, const char *text)
{
  cleanup_free char *r = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: %zu\r\n\r\n%s",
                                   strlen(text), text);
  ck_assert_int_eq(write_all(fd, r, strlen(r)), 0);
}

/* Serves one connection until the client closes it. */
static void
serve(struct server *s, int fd)
{
  char buf[8192];
  size_t have = 0;
  for (;;)
    {
      char *end;
      ssize_t n;
      while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL)
        {
          n = read(fd, buf + have, sizeof(buf) - have);
          if (n <= 0)
            return;
          have += (size_t) n;
        }
      if (strncmp(buf, "GET /leftover ", 14) == 0)
        {
          send_text(fd, "leftover");
          usleep(50 * 1000);
          send_text(fd, "STALE");
          __atomic_store_n(&s->stale_sent, 1, __ATOMIC_SEQ_CST);
        }
      else if (strncmp(buf, "GET /ok ", 8) == 0)
        send_text(fd, "ok");
      else
        send_text(fd, "again");
      have -= (size_t) (end + 4 - buf);
      memmove(buf, end + 4, have);
    }
}

static void *
run(void *data)
{
  struct server *s = data;
  for (;;)
    {
      int fd = accept(s->listen_fd, NULL, NULL);
      if (fd < 0)
        return NULL;
      __atomic_add_fetch(&s->connections, 1, __ATOMIC_SEQ_CST);
      serve(s, fd);
      close(fd);
    }
}

static void
start(struct server *s)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof(a);
  memset(s, 0, sizeof(*s));
  s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(s->listen_fd, 0);
  ck_assert_int_eq(bind(s->listen_fd, (struct sockaddr *) &a, sizeof(a)), 0);
  ck_assert_int_eq(listen(s->listen_fd, 8), 0);
  ck_assert_int_eq(getsockname(s->listen_fd, (struct sockaddr *) &a, &len), 0);
  s->port = ntohs(a.sin_port);
  ck_assert_int_eq(pthread_create(&s->thread, NULL, run, s), 0);
}

static void
stop(struct server *s)
{
  shutdown(s->listen_fd, SHUT_RDWR); /* accept() fails: the thread ends */
  close(s->listen_fd);
  pthread_join(s->thread, NULL);
}

static void
get(struct server *s, struct frc_http_conn *conn, const char *path, const char *want)
{
  cleanup_free char *url = xasprintf("http://127.0.0.1:%d%s", s->port, path);
  cleanup_http_response struct frc_http_response resp = { 0 };
  struct frc_http_opts o = { .deadline_ns = frc_now_ns() + 10 * 1000000000LL, .no_proxy = "*" };
  frc_error_t err = NULL;
  int rc = frc_http_request_on(conn, &o, "GET", url, NULL, NULL, 0, &resp, &err);
  ck_assert_msg(rc == 0, "GET %s: %s", path, err ? err->msg : "");
  ck_assert_int_eq(resp.status, 200);
  ck_assert_str_eq(resp.body, want);
}

START_TEST(test_kept_connection)
{
  struct server s;
  struct frc_http_conn conn = { .handle = NULL };
  start(&s);
  get(&s, &conn, "/ok", "ok");
  get(&s, &conn, "/again", "again");
  ck_assert_int_eq(__atomic_load_n(&s.connections, __ATOMIC_SEQ_CST), 1);
  frc_http_conn_release(&conn);
  stop(&s);
}
END_TEST

START_TEST(test_leftovers_never_read_as_the_next_answer)
{
  struct server s;
  struct frc_http_conn conn = { .handle = NULL };
  start(&s);
  get(&s, &conn, "/leftover", "leftover");
  /* the leftover response arrives before the next request: waited for (a
   * fixed 200 ms lost to a loaded machine's server thread read the STALE
   * answer as /again's), then loopback's delivery */
  for (int i = 0; i < 10000 && !__atomic_load_n(&s.stale_sent, __ATOMIC_SEQ_CST); i++)
    usleep(1000);
  ck_assert(__atomic_load_n(&s.stale_sent, __ATOMIC_SEQ_CST));
  usleep(20 * 1000);
  get(&s, &conn, "/again", "again");
  ck_assert_int_eq(__atomic_load_n(&s.connections, __ATOMIC_SEQ_CST), 2);
  get(&s, &conn, "/ok", "ok"); /* the new connection is kept */
  ck_assert_int_eq(__atomic_load_n(&s.connections, __ATOMIC_SEQ_CST), 2);
  frc_http_conn_release(&conn);
  stop(&s);
}
END_TEST

int
main(void)
{
  Suite *s = suite_create("http");
  TCase *tc = tcase_create("http");
  SRunner *sr;
  int failed;

  tcase_add_test(tc, test_kept_connection);
  tcase_add_test(tc, test_leftovers_never_read_as_the_next_answer);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
