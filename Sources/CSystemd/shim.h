#ifndef OPENAI_PROXY_CSYSTEMD_SHIM_H
#define OPENAI_PROXY_CSYSTEMD_SHIM_H

#include <systemd/sd-daemon.h>
#include <sys/prctl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
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

// accept4 is a GNU extension Swift's Glibc module leaves out; the socket comes back non-blocking, close-on-exec.
int accept4(int, struct sockaddr *, socklen_t *, int);
static inline int openai_proxy_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

#endif
