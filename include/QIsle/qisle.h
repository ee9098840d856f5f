// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/// \file qisle.h
/// \brief QIsle, a Lua 5.4 VM on a thread of its own. Include `<QIsle/QIsle>`.

#include <QIsle/qisleerror.h>
#include <QIsle/qisleglobal.h>
#include <QIsle/qisleoptions.h>

#include <QtCore/QFuture>
#include <QtCore/QObject>
#include <QtCore/QVariant>

#include <functional>
#include <memory>

class QIslePrivate;

/// A Lua 5.4 VM confined to a QThread of its own.
///
/// Requests are queued to the VM's thread and answered through
/// QFuture<QVariant>; QFuture::cancel() stops a running script at its next
/// hook check. Every member may be called from any thread at once; signals are
/// delivered in the thread the QIsle lives in.
///
/// Blocking calls (eval, call, exec) throw QIsleError. They check
/// QFuture::isCanceled() before reading a result, as your own code must:
/// in Qt 6.4, QFuture::result() on a canceled future that holds no result
/// reads a missing result (undefined behaviour).
class QISLE_EXPORT QIsle : public QObject
{
    Q_OBJECT
public:
    /// Runs once on the VM's thread, protected, before any request (spawn()).
    using Init = std::function<void(lua_State *)>;
    /// A C++ function callable from Lua (registerFunction()): the Lua
    /// arguments as QVariants in, one value out.
    using HostFunction = std::function<QVariant(const QVariantList &)>;
    /// A C++ function callable from Lua that answers later
    /// (registerAsyncFunction()): the Lua arguments as QVariants in, a
    /// future of one value out. The calling script waits for the future.
    using AsyncHostFunction = std::function<QFuture<QVariant>(const QVariantList &)>;
    /// A C++ closure run on the VM's thread against the raw lua_State
    /// (exec(), spawnExec()); its return value is the request's result.
    using ExecFunction = std::function<QVariant(lua_State *)>;

    /// Starts the thread, opens the VM and runs init on it, protected, before
    /// any request. Returns once init finished; throws QIsleError (Kind::Init)
    /// when init raises a Lua error or throws.
    ///
    /// Without init and without QIsleOptions::memoryLimit, nothing is left
    /// that can fail, and spawn() returns as soon as the VM and Lua's
    /// standard libraries exist, without waiting for the new thread to be
    /// scheduled: requests submitted at once queue while that thread opens
    /// QIsle's own libraries, and stopMode() and usedMemory() are already
    /// right. (Should those libraries still not open -- the process out of
    /// memory -- every request fails with Kind::Init.)
    static std::unique_ptr<QIsle> spawn(Init init = {}, const QIsleOptions &options = {});

    /// Cancels queued and running requests (every future ends finished) and
    /// joins the thread; returns promptly even during `while true do end`.
    ~QIsle() override;

    /// @name Blocking calls
    /// Blocking: run on the VM's thread and wait. Throw QIsleError. Called on
    /// the VM's own thread (from a host function or exec closure) they run
    /// inline instead of deadlocking.
    ///@{

    /// Runs a chunk of Lua and returns its first return value (an invalid
    /// QVariant when it returns nothing).
    QVariant eval(const QString &chunk);
    /// Calls a global function by name (a dotted path such as
    /// `"string.upper"` works too) with args; Kind::NotFound when the name is
    /// missing or not callable.
    QVariant call(const QString &function, const QVariantList &args = {});
    /// Runs fn on the VM's thread, protected, and returns what it returns.
    QVariant exec(ExecFunction fn);
    ///@}

    /// @name Non-blocking calls
    /// Non-blocking: never throw; a failure arrives in the future. Result 0 is
    /// the first value the chunk returns; results 1..n are isle.emit() values.
    ///@{

    /// eval() as a request of its own: the chunk's first return value is result 0.
    [[nodiscard]] QFuture<QVariant> spawnEval(const QString &chunk);
    /// call() as a request of its own.
    [[nodiscard]] QFuture<QVariant> spawnCall(const QString &function, const QVariantList &args = {});
    /// exec() as a request of its own.
    [[nodiscard]] QFuture<QVariant> spawnExec(ExecFunction fn);
    ///@}

    /// @name With per-request settings
    /// The same with per-request settings (a timeout of its own).
    ///@{

    /// eval() with a timeout and chunk name of its own.
    QVariant eval(const QString &chunk, const QIsleRequestOptions &options);
    /// call() with a timeout of its own.
    QVariant call(const QString &function, const QVariantList &args, const QIsleRequestOptions &options);
    /// exec() with a timeout of its own.
    QVariant exec(ExecFunction fn, const QIsleRequestOptions &options);
    /// spawnEval() with a timeout and chunk name of its own.
    [[nodiscard]] QFuture<QVariant> spawnEval(const QString &chunk, const QIsleRequestOptions &options);
    /// spawnCall() with a timeout of its own.
    [[nodiscard]] QFuture<QVariant> spawnCall(const QString &function, const QVariantList &args,
                                              const QIsleRequestOptions &options);
    /// spawnExec() with a timeout of its own.
    [[nodiscard]] QFuture<QVariant> spawnExec(ExecFunction fn, const QIsleRequestOptions &options);
    ///@}

    /// Bytes the VM holds now (what QIsleOptions::memoryLimit bounds). Any
    /// thread, lock-free, also while a script runs; 0 once shut down.
    qsizetype usedMemory() const;

    /// For long-running C++ called from Lua (registered functions, exec
    /// closures), on the VM's thread: whether the running request is being
    /// stopped (canceled, past its timeout, isle destroyed). Return early
    /// when it is: the request then ends canceled (or Timeout) whatever the
    /// function returns. False on any other thread.
    static bool currentRequestStopping();
    /// Parks while the running request is suspended (QFuture::suspend()),
    /// then returns currentRequestStopping(). Call it in a host function's loop.
    static bool checkpoint();

    /// Makes a global Lua function (a dotted name creates the tables on the
    /// way) that runs fn on the VM's thread. A C++ exception thrown by fn is a
    /// Lua error that pcall can catch; uncaught, the request fails with
    /// Kind::Callback. Queued like any request: later requests see it.
    void registerFunction(const QString &name, HostFunction fn);

    /// Makes a global Lua function (a dotted name creates the tables on the
    /// way) that runs fn on the VM's thread and waits for the future fn
    /// returns: the script gets its result 0 (nil when it has none). While
    /// it waits, the request is a suspended coroutine and the Lua thread is
    /// free for other work (see QIsleOptions::maxConcurrentRequests). A
    /// future that fails raises a Lua error carrying the exception's message
    /// (catchable by pcall; uncaught, the request fails with Kind::Callback);
    /// a future canceled by its producer raises an error containing
    /// "canceled". A finished future needs no wait and works anywhere. Where
    /// Lua cannot yield (a table.sort comparator, a string.gsub callback,
    /// __gc, init, an exec closure, a blocking call nested on the Lua thread)
    /// a pending future is canceled and a Lua error containing "cannot wait
    /// here" raised. Stopping the request (cancel, timeout, destruction)
    /// cancels the future it waits for. fn throwing behaves as a throwing
    /// registerFunction. Queued like any request: later requests see it.
    ///
    ///     isle->registerAsyncFunction("net.get", [nam](const QVariantList &args) {
    ///         return fetch(nam, args.value(0).toUrl()); // QFuture<QVariant>
    ///     });
    ///     isle->eval("local page = net.get('https://example.org') return #page");
    void registerAsyncFunction(const QString &name, AsyncHostFunction fn);

    /// The same, but fn runs in the thread `context` lives in (typically the
    /// GUI thread), so it may touch widgets and models; the script waits for
    /// its answer. A thread blocked in one of QIsle's blocking calls (eval,
    /// call, exec, waitFor, shutdown, destruction) runs these calls meanwhile
    /// -- and no other events -- so the GUI thread may eval a script that
    /// calls a GUI-thread function. context is referenced weakly: a call made
    /// once it is destroyed (or destroyed before the call runs) raises a Lua
    /// error whose message contains "destroyed". A null context means the
    /// Lua thread, as the form above.
    void registerFunction(const QString &name, QObject *context, HostFunction fn);

    /// The async form with a context: fn runs in the thread `context` lives
    /// in and returns a future there; the script waits for the call, then for
    /// that future, as for registerAsyncFunction(). Where Lua cannot yield,
    /// the call blocks until fn returns; a pending future is then canceled and
    /// "cannot wait here" raised. A destroyed context: as registerFunction().
    void registerAsyncFunction(const QString &name, QObject *context, AsyncHostFunction fn);

    /// Makes a global (a dotted name creates the tables on the way) for
    /// object: its Q_PROPERTYs read and written as fields, its public slots
    /// and Q_INVOKABLEs called as methods (obj:add(1, 2)), its enums by key
    /// name, its signals as obj.sig:connect(fn), obj.sig:wait([ms]) and
    /// obj.sig:emit(...). Every access runs in the object's thread. The
    /// object is referenced weakly, at once, in the calling thread; using it
    /// once destroyed raises a Lua error containing "destroyed". Lua never
    /// deletes it. Returns without waiting; queued like any request.
    void exposeObject(const QString &name, QObject *object);

    /// Runs what was queued before it, closes the VM and joins the thread.
    /// Later requests fail at once with Kind::Shutdown. Idempotent. Called
    /// in the QIsle's thread, it then emits printed for every line not
    /// delivered yet, before it returns: a program that runs no event loop
    /// after its last blocking call still gets every print.
    void shutdown();
    /// Whether the isle still takes requests: false once shutdown() was called.
    bool isAlive() const;
    /// How this isle stops scripts: Signal or Hook (Automatic resolved at
    /// spawn; see QIsleOptions::StopMode).
    QIsleOptions::StopMode stopMode() const;

    /// Blocks until future finished and returns result 0, or throws: the stored
    /// QIsleError, or Kind::Cancelled for a canceled future that holds no
    /// result 0. Safe for futures that never got a result.
    static QVariant waitFor(QFuture<QVariant> future);

Q_SIGNALS:
    /// Lua's print(...): the arguments through tostring, joined by tabs,
    /// without the newline. Emitted by the QIsle's thread's event loop, in
    /// order, a request's lines before its future's finished notification;
    /// a flood (or slow slots) goes in slices, so the thread's other events
    /// get their turn, and a single sendPostedEvents() may emit only the
    /// first slice. shutdown() emits what is left.
    void printed(const QString &text);
    /// A Lua handler connected to a signal (obj.sig:connect(fn)) failed: it
    /// raised an error or ran past its timeout. Each emission runs the
    /// handler as a request of its own, so nobody else sees the error.
    void handlerFailed(const QIsleError &error);

private:
    explicit QIsle(const QIsleOptions &options);
    Q_DISABLE_COPY_MOVE(QIsle)

    std::unique_ptr<QIslePrivate> d;
    friend class QIslePrivate;
};
