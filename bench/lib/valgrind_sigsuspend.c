// Preloaded into the worker under valgrind (bench/callgrind-worker.sh). libdispatch parks the main thread of a
// Swift async `main` in `sigsuspend` on a `static const sigset_t`, in read-only memory; valgrind 3.19's
// `rt_sigsuspend` wrapper writes into the mask it is given and crashes on that page. The same call with a copy
// of the mask on the stack behaves the same and leaves valgrind a writable mask.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>

int sigsuspend(const sigset_t *mask) {
    static int (*next)(const sigset_t *);
    if (!next) next = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
    sigset_t copy = *mask;
    return next(&copy);
}
