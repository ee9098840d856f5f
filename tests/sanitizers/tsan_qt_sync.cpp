// ThreadSanitizer helper for an uninstrumented Qt (LD_PRELOAD, TSan runs only).
//
// Qt 6.4 from Debian is not built with -fsanitize=thread. QFuture/QPromise
// hand a result or an exception from one thread to another under
// QFutureInterfaceBase's mutex and reference counts, and QCoreApplication::
// postEvent hands an event over under its queue's mutex: all inside
// libQt6Core, where TSan sees nothing. So TSan reports every such hand-off
// as a race, with QIsle's own frames on both sides, which no suppression
// limited to Qt's code could silence.
//
// This library wraps those few exported Qt functions and tells TSan about
// the happens-before edge Qt provides: a release on the shared state before
// publishing (report*, cancel, dropping a reference), an acquire after
// observing it (waitFor*, is*, the last reference). It adds no locking and
// changes no behaviour; only TSan's model of Qt's synchronisation.
//
// Built and preloaded by scripts/ci-sanitizers.sh; matches Qt 6's ABI on
// Linux (the d-pointer follows the vtable pointer in QFutureInterfaceBase).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

extern "C" void __tsan_acquire(void *addr);
extern "C" void __tsan_release(void *addr);
extern "C" void __tsan_func_entry(void *pc);
extern "C" void __tsan_func_exit();

// This file is not instrumented, so its frames are missing from TSan's
// stacks; a named frame is pushed by hand where tsan.supp must see it.
#define QISLE_NAMED_FRAME(self_fn)                                                                  \
    __tsan_func_entry(__builtin_return_address(0));                                                 \
    __tsan_func_entry(reinterpret_cast<char *>(&self_fn) + 4)
#define QISLE_END_NAMED_FRAME() (__tsan_func_exit(), __tsan_func_exit())

namespace {

void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) {
        std::fprintf(stderr, "tsan_qt_sync: %s not found in Qt\n", name);
        std::abort();
    }
    return f;
}

// The QFutureInterfaceBasePrivate shared by every copy of a future/promise.
void *shared(const void *self)
{
    return *reinterpret_cast<void *const *>(static_cast<const char *>(self) + sizeof(void *));
}

// The receiving thread's posted-event list, which every poster appends to
// under that thread's mutex inside Qt: a key for it (QObject::thread()).
void *postedEventList(const void *receiver)
{
    static auto threadOf = reinterpret_cast<void *(*)(const void *)>(real("_ZNK7QObject6threadEv"));
    void *thread = receiver ? threadOf(receiver) : nullptr;
    return thread ? static_cast<char *>(thread) + 1 : nullptr;
}

} // namespace

// Itanium C++ ABI: a member function takes `this` first; an argument of a
// class type with a non-trivial destructor (exception_ptr) is passed by
// address. The names are Qt's mangled symbols.
#define QISLE_REAL(type, name) static auto fn = reinterpret_cast<type>(real(#name))

extern "C" {

// --- publishing: release before -------------------------------------------
void _ZN20QFutureInterfaceBase14reportFinishedEv(void *self)
{
    QISLE_REAL(void (*)(void *), _ZN20QFutureInterfaceBase14reportFinishedEv);
    __tsan_release(shared(self));
    // Named: it posts the finished callout events (see tsan.supp).
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase14reportFinishedEv);
    fn(self);
    QISLE_END_NAMED_FRAME();
}

void _ZN20QFutureInterfaceBase15reportExceptionERK10QException(void *self, const void *e)
{
    QISLE_REAL(void (*)(void *, const void *), _ZN20QFutureInterfaceBase15reportExceptionERK10QException);
    __tsan_release(shared(self));
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase15reportExceptionERK10QException); // posts the canceled callout events
    fn(self, e);
    QISLE_END_NAMED_FRAME();
}

void _ZN20QFutureInterfaceBase15reportExceptionENSt15__exception_ptr13exception_ptrE(void *self, void *e)
{
    QISLE_REAL(void (*)(void *, void *), _ZN20QFutureInterfaceBase15reportExceptionENSt15__exception_ptr13exception_ptrE);
    __tsan_release(shared(self));
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase15reportExceptionENSt15__exception_ptr13exception_ptrE); // posts the canceled callout events
    fn(self, e);
    QISLE_END_NAMED_FRAME();
}

void _ZN20QFutureInterfaceBase14reportCanceledEv(void *self)
{
    QISLE_REAL(void (*)(void *), _ZN20QFutureInterfaceBase14reportCanceledEv);
    __tsan_release(shared(self));
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase14reportCanceledEv); // posts the canceled callout events
    fn(self);
    QISLE_END_NAMED_FRAME();
}

void _ZN20QFutureInterfaceBase6cancelEv(void *self)
{
    QISLE_REAL(void (*)(void *), _ZN20QFutureInterfaceBase6cancelEv);
    __tsan_release(shared(self));
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase6cancelEv); // posts the canceled callout events
    fn(self);
    QISLE_END_NAMED_FRAME();
}

void _ZN20QFutureInterfaceBase6cancelENS_10CancelModeE(void *self, int mode)
{
    QISLE_REAL(void (*)(void *, int), _ZN20QFutureInterfaceBase6cancelENS_10CancelModeE);
    __tsan_release(shared(self));
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase6cancelENS_10CancelModeE); // posts the canceled callout events
    fn(self, mode);
    QISLE_END_NAMED_FRAME();
}

// --- observing: acquire after (also when it throws the stored exception) ---
void _ZN20QFutureInterfaceBase15waitForFinishedEv(void *self)
{
    QISLE_REAL(void (*)(void *), _ZN20QFutureInterfaceBase15waitForFinishedEv);
    void *d = shared(self);
    try {
        fn(self);
    } catch (...) {
        __tsan_acquire(d);
        throw;
    }
    __tsan_acquire(d);
}

void _ZN20QFutureInterfaceBase13waitForResultEi(void *self, int index)
{
    QISLE_REAL(void (*)(void *, int), _ZN20QFutureInterfaceBase13waitForResultEi);
    void *d = shared(self);
    try {
        fn(self, index);
    } catch (...) {
        __tsan_acquire(d);
        throw;
    }
    __tsan_acquire(d);
}

void _ZN20QFutureInterfaceBase18suspendIfRequestedEv(void *self)
{
    QISLE_REAL(void (*)(void *), _ZN20QFutureInterfaceBase18suspendIfRequestedEv);
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase18suspendIfRequestedEv); // posts callout events
    fn(self);
    QISLE_END_NAMED_FRAME();
    __tsan_acquire(shared(self));
}

#define QISLE_OBSERVER(ret, name)                                                                   \
    ret name(const void *self)                                                                      \
    {                                                                                               \
        QISLE_REAL(ret (*)(const void *), name);                                                    \
        const ret r = fn(self);                                                                     \
        __tsan_acquire(shared(self));                                                               \
        return r;                                                                                   \
    }

QISLE_OBSERVER(bool, _ZNK20QFutureInterfaceBase10isCanceledEv)
QISLE_OBSERVER(bool, _ZNK20QFutureInterfaceBase10isFinishedEv)
QISLE_OBSERVER(bool, _ZNK20QFutureInterfaceBase12hasExceptionEv)
QISLE_OBSERVER(int, _ZNK20QFutureInterfaceBase11resultCountEv)

bool _ZNK20QFutureInterfaceBase10queryStateENS_5StateE(const void *self, int state)
{
    QISLE_REAL(bool (*)(const void *, int), _ZNK20QFutureInterfaceBase10queryStateENS_5StateE);
    const bool r = fn(self, state);
    __tsan_acquire(shared(self));
    return r;
}

bool _ZNK20QFutureInterfaceBase15isResultReadyAtEi(const void *self, int index)
{
    QISLE_REAL(bool (*)(const void *, int), _ZNK20QFutureInterfaceBase15isResultReadyAtEi);
    const bool r = fn(self, index);
    __tsan_acquire(shared(self));
    return r;
}

// --- reference counts: the last owner sees every other owner's work --------
bool _ZNK20QFutureInterfaceBase6derefTEv(const void *self)
{
    QISLE_REAL(bool (*)(const void *), _ZNK20QFutureInterfaceBase6derefTEv);
    void *d = shared(self);
    __tsan_release(d);
    __tsan_acquire(d);
    return fn(self);
}

// A destructor acquires before Qt's decrement: an owner dropping its
// reference at the same moment may release after that acquire, and the
// one that deletes is then not ordered after it (tsan.supp names the
// destructor for that delete).
#define QISLE_DESTRUCTOR(name)                                                                      \
    void name(void *self)                                                                           \
    {                                                                                               \
        QISLE_REAL(void (*)(void *), name);                                                         \
        if (void *d = shared(self)) {                                                               \
            __tsan_release(d);                                                                      \
            __tsan_acquire(d);                                                                      \
        }                                                                                           \
        fn(self);                                                                                   \
    }

QISLE_DESTRUCTOR(_ZN20QFutureInterfaceBaseD0Ev)
QISLE_DESTRUCTOR(_ZN20QFutureInterfaceBaseD1Ev)
QISLE_DESTRUCTOR(_ZN20QFutureInterfaceBaseD2Ev)

void *_ZN20QFutureInterfaceBaseaSERKS_(void *self, const void *other)
{
    QISLE_REAL(void *(*)(void *, const void *), _ZN20QFutureInterfaceBaseaSERKS_);
    if (void *d = shared(self)) { // the old state loses a reference
        __tsan_release(d);
        __tsan_acquire(d);
    }
    return fn(self, other);
}

// --- posted events: the poster's writes happen before the delivery --------
void _ZN16QCoreApplication9postEventEP7QObjectP6QEventi(void *receiver, void *event, int priority)
{
    QISLE_REAL(void (*)(void *, void *, int), _ZN16QCoreApplication9postEventEP7QObjectP6QEventi);
    __tsan_release(event);
    // Two threads posting to one thread grow its list in turn (a realloc
    // each may do): ordered by Qt's mutex, shown here.
    void *list = postedEventList(receiver);
    if (list)
        __tsan_acquire(list);
    fn(receiver, event, priority);
    if (list)
        __tsan_release(list);
}

bool _ZN16QCoreApplication15notifyInternal2EP7QObjectP6QEvent(void *receiver, void *event)
{
    QISLE_REAL(bool (*)(void *, void *), _ZN16QCoreApplication15notifyInternal2EP7QObjectP6QEvent);
    __tsan_acquire(event);
    return fn(receiver, event);
}

// --- callout events: Qt allocates and posts them inside these calls and the
// receiving thread deletes them in Qt's event loop. Pass-through wrappers, so
// that tsan.supp can name these Qt calls (the release after the call also
// keeps the frame from being tail-called away).
#define QISLE_PASS2(name, A1, A2)                                                                   \
    void name(void *self, A1 a1, A2 a2)                                                             \
    {                                                                                               \
        QISLE_REAL(void (*)(void *, A1, A2), name);                                                 \
        QISLE_NAMED_FRAME(name);                                                                    \
        fn(self, a1, a2);                                                                           \
        QISLE_END_NAMED_FRAME();                                                                    \
        __tsan_release(shared(self));                                                               \
    }

QISLE_PASS2(_ZN20QFutureInterfaceBase18reportResultsReadyEii, int, int)
QISLE_PASS2(_ZN20QFutureInterfaceBase16setProgressRangeEii, int, int)
QISLE_PASS2(_ZN20QFutureInterfaceBase23setProgressValueAndTextEiRK7QString, int, const void *)

// suspend() and resume() of a future, and a worker telling it paused: the
// suspending, resumed and suspended callout events likewise.
void _ZN20QFutureInterfaceBase12setSuspendedEb(void *self, bool suspend)
{
    QISLE_REAL(void (*)(void *, bool), _ZN20QFutureInterfaceBase12setSuspendedEb);
    __tsan_release(shared(self));
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase12setSuspendedEb);
    fn(self, suspend);
    QISLE_END_NAMED_FRAME();
}

void _ZNK20QFutureInterfaceBase15reportSuspendedEv(const void *self)
{
    QISLE_REAL(void (*)(const void *), _ZNK20QFutureInterfaceBase15reportSuspendedEv);
    __tsan_release(shared(self));
    QISLE_NAMED_FRAME(_ZNK20QFutureInterfaceBase15reportSuspendedEv);
    fn(self);
    QISLE_END_NAMED_FRAME();
}

void _ZN20QFutureInterfaceBase16setProgressValueEi(void *self, int value)
{
    QISLE_REAL(void (*)(void *, int), _ZN20QFutureInterfaceBase16setProgressValueEi);
    QISLE_NAMED_FRAME(_ZN20QFutureInterfaceBase16setProgressValueEi);
    fn(self, value);
    QISLE_END_NAMED_FRAME();
    __tsan_release(shared(self));
}

// --- a watcher joins or leaves a future's output connections (a list inside
// the future's private state, guarded by its futex-based mutex) while another
// thread reports to them. Named, so that tsan.supp can name them.
void _ZN18QFutureWatcherBase22connectOutputInterfaceEv(void *self)
{
    QISLE_REAL(void (*)(void *), _ZN18QFutureWatcherBase22connectOutputInterfaceEv);
    QISLE_NAMED_FRAME(_ZN18QFutureWatcherBase22connectOutputInterfaceEv);
    fn(self);
    QISLE_END_NAMED_FRAME();
}

void _ZN18QFutureWatcherBase25disconnectOutputInterfaceEb(void *self, bool pendingAssignment)
{
    QISLE_REAL(void (*)(void *, bool), _ZN18QFutureWatcherBase25disconnectOutputInterfaceEb);
    QISLE_NAMED_FRAME(_ZN18QFutureWatcherBase25disconnectOutputInterfaceEb);
    fn(self, pendingAssignment);
    QISLE_END_NAMED_FRAME();
}

} // extern "C"
