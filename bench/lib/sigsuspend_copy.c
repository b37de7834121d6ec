// For bench/usage_instructions.sh: valgrind 3.19 rewrites the signal mask that sigsuspend is given, and
// libdispatch's signal thread (where a Swift process's main thread parks) passes one in read-only memory,
// so valgrind dies of SIGSEGV before the program serves. Preloaded, this hands sigsuspend a writable copy.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>

int sigsuspend(const sigset_t *mask) {
    static int (*real)(const sigset_t *);
    if (!real) real = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
    sigset_t copy = *mask;
    return real(&copy);
}
