// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "stop/stopsignal_p.h"

#include "stop/stopmonitor_p.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__SANITIZE_THREAD__)
#  define QISLE_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define QISLE_TSAN 1
#  endif
#endif

namespace {

// Initial-exec: reading it from a signal handler must not allocate. (A
// library loaded with dlopen still gets it from glibc's static TLS surplus.)
thread_local lua_State *volatile t_running __attribute__((tls_model("initial-exec"))) = nullptr;
thread_local lua_Hook t_armedHook __attribute__((tls_model("initial-exec"))) = nullptr;

#ifdef QISLE_HAVE_STOP_SIGNAL
constexpr int SignalNumber = SIGURG; // rarely used by applications; chained if it is
int g_tag;                           // its address marks our signals
struct sigaction g_previous;

// Only async-signal-safe work here: lua_sethook is made for it.
void onStopSignal(int signal, siginfo_t *info, void *context)
{
    if (info && info->si_code == SI_QUEUE && info->si_value.sival_ptr == &g_tag) {
        const int savedErrno = errno;
        if (lua_State *L = t_running; L && t_armedHook)
            lua_sethook(L, t_armedHook, LUA_MASKCOUNT, 1);
        errno = savedErrno;
        return;
    }
    // Not ours: whoever had the signal before us gets it.
    if (g_previous.sa_flags & SA_SIGINFO) {
        if (g_previous.sa_sigaction)
            g_previous.sa_sigaction(signal, info, context);
    } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        g_previous.sa_handler(signal);
    }
}

bool installHandler()
{
    static std::once_flag once;
    static bool installed = false;
    std::call_once(once, [] {
        struct sigaction action;
        std::memset(&action, 0, sizeof action);
        action.sa_sigaction = onStopSignal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        installed = sigaction(SignalNumber, &action, &g_previous) == 0;
    });
    return installed;
}
#endif

} // namespace

#ifdef QISLE_HAVE_STOP_SIGNAL
void StopWatch::signal() const
{
    union sigval value;
    value.sival_ptr = &g_tag;
    pthread_sigqueue(thread, SignalNumber, value);
}
#endif

bool StopSignal::supported()
{
#if defined(QISLE_HAVE_STOP_SIGNAL) && !defined(QISLE_TSAN)
    return true;
#else
    return false;
#endif
}

bool StopSignal::available()
{
#if defined(QISLE_HAVE_STOP_SIGNAL) && !defined(QISLE_TSAN)
    return installHandler();
#else
    return false;
#endif
}

bool StopSignal::preferred()
{
    const char *mode = std::getenv("QISLE_STOP_MODE");
    return supported() && !(mode && std::strcmp(mode, "hook") == 0);
}

StopSignal::StopSignal(std::chrono::microseconds interval, lua_Hook armedHook, std::function<bool()> stopPending)
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (!installHandler())
        return;
    t_armedHook = armedHook;
    m_watch = std::make_unique<StopWatch>();
    m_watch->thread = pthread_self();
    m_watch->interval = interval.count() > 0 ? interval : std::chrono::microseconds(250);
    m_watch->stopPending = std::move(stopPending);
    StopMonitor::instance().add(m_watch.get());
#else
    Q_UNUSED(interval);
    Q_UNUSED(armedHook);
    Q_UNUSED(stopPending);
#endif
}

StopSignal::~StopSignal()
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (m_watch)
        StopMonitor::instance().remove(m_watch.get()); // no signal comes after this
#endif
    t_running = nullptr;
    t_armedHook = nullptr;
}

void StopSignal::start()
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (!m_watch || m_started)
        return;
    m_started = true;
    StopMonitor::instance().activate(m_watch.get());
#endif
}

void StopSignal::stop()
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (!m_watch)
        return;
    m_started = false;
    // Also after startFromAnyThread() alone.
    m_watch->active.store(false, std::memory_order_relaxed);
#endif
}

void StopSignal::startFromAnyThread()
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (m_watch)
        StopMonitor::instance().activate(m_watch.get());
#endif
}

void StopSignal::setFlushAt(std::chrono::steady_clock::time_point at)
{
#ifdef QISLE_HAVE_STOP_SIGNAL
    if (m_watch) {
        const std::int64_t ns = at == std::chrono::steady_clock::time_point::max()
                ? 0
                : qMax<std::int64_t>(1, at.time_since_epoch().count());
        m_watch->flushAt.store(ns, std::memory_order_relaxed);
    }
#else
    Q_UNUSED(at);
#endif
}

void StopSignal::setRunning(lua_State *L)
{
    t_running = L;
}

lua_State *StopSignal::running()
{
    return t_running;
}
