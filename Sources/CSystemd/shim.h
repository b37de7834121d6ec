#ifndef OPENAI_PROXY_CSYSTEMD_SHIM_H
#define OPENAI_PROXY_CSYSTEMD_SHIM_H

#include <systemd/sd-daemon.h>
#include <sys/prctl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <sys/socket.h>

// prctl is variadic, which Swift cannot call directly.
static inline int openai_proxy_set_parent_death_signal(int sig) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0);
}

// posix_spawn_file_actions_addclosefrom_np is a glibc extension (2.34+) that
// Swift's Glibc module does not surface without _GNU_SOURCE.
int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int);
static inline int openai_proxy_spawn_close_from(posix_spawn_file_actions_t *actions, int lowfd) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
}

// The wait-status macros are C macros, invisible to Swift.
static inline int openai_proxy_wifexited(int status) { return WIFEXITED(status); }
static inline int openai_proxy_wexitstatus(int status) { return WEXITSTATUS(status); }
static inline int openai_proxy_wifsignaled(int status) { return WIFSIGNALED(status); }
static inline int openai_proxy_wtermsig(int status) { return WTERMSIG(status); }

// An epoll instance watching `fd` for readability with EPOLLEXCLUSIVE, so that of the processes sharing
// one listening socket only one is woken per incoming connection. Returns the epoll fd, or -1.
static inline int openai_proxy_exclusive_poller(int fd) {
    int poller = epoll_create1(EPOLL_CLOEXEC);
    if (poller < 0) return -1;
    struct epoll_event event = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data = { .fd = fd } };
    if (epoll_ctl(poller, EPOLL_CTL_ADD, fd, &event) != 0) { close(poller); return -1; }
    return poller;
}

// accept4 is a GNU extension Swift's Glibc module leaves out; the socket comes back non-blocking, close-on-exec.
int accept4(int, struct sockaddr *, socklen_t *, int);
static inline int openai_proxy_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

// Waits up to `timeout_ms` for the poller; >0 when readable, 0 on timeout, -1 on error.
static inline int openai_proxy_poller_wait(int poller, int timeout_ms) {
    struct epoll_event event;
    return epoll_wait(poller, &event, 1, timeout_ms);
}

#endif
