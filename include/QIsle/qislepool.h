// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/// \file qislepool.h
/// \brief QIslePool, many isles behind one front, and QIsleLease. Include `<QIsle/QIslePool>`.

#include <QIsle/qisle.h>

#include <QtCore/QFuture>
#include <QtCore/QObject>
#include <QtCore/QVariant>

#include <chrono>
#include <memory>

class QIslePoolPrivate;
class QIsleLeasePrivate;

/// How a QIslePool is set up. A plain struct: fill in what you need.
struct QIslePoolOptions
{
    /// Isles in the pool; 0 (or less) = QThread::idealThreadCount().
    int size = 0;
    /// true: every isle is spawned by QIslePool::spawn(); false: an isle is
    /// spawned when a request or a checkout() first needs it.
    bool warm = true;
    /// The options of every isle.
    QIsleOptions isle;
};

/// An isle checked out of a QIslePool: it serves only its holder until the
/// lease is released (or destroyed), so a session can keep state across
/// requests. Move-only. A default-constructed lease is empty.
///
/// A lease may be moved to and used from any thread, and may outlive its
/// pool: once the pool is shut down, calls through the lease fail with
/// QIsleError::Kind::Shutdown and releasing it does nothing more.
class QISLE_EXPORT QIsleLease
{
public:
    /// An empty lease: isle() is nullptr; release() and discard() do nothing.
    QIsleLease() noexcept;
    /// Takes other's isle; other is empty afterwards.
    QIsleLease(QIsleLease &&other) noexcept;
    /// Releases the isle this lease held first, then takes other's.
    QIsleLease &operator=(QIsleLease &&other) noexcept;
    /// Releases the isle back to the pool (release()).
    ~QIsleLease();

    /// The leased isle; nullptr for an empty lease.
    QIsle *isle() const noexcept;
    /// The leased isle, to call its members: `lease->eval(...)`.
    QIsle *operator->() const noexcept { return isle(); }
    /// Whether the lease holds an isle.
    explicit operator bool() const noexcept { return isle() != nullptr; }

    /// Gives the isle back to the pool (what the destructor does); the lease
    /// is empty afterwards. Requests waiting in the pool go to it before a
    /// blocked checkout() gets it. Nothing happens on an empty lease.
    void release();
    /// Destroys the isle instead (its queued and running requests are
    /// canceled, as by ~QIsle, and this returns promptly); the pool spawns a
    /// fresh one in its place, in the background (an init failure leaves the
    /// slot empty, to be tried again when needed). The lease is empty
    /// afterwards. Nothing happens on an empty lease.
    void discard();

private:
    explicit QIsleLease(std::unique_ptr<QIsleLeasePrivate> d) noexcept;
    QIsleLease(const QIsleLease &) = delete;
    QIsleLease &operator=(const QIsleLease &) = delete;

    std::unique_ptr<QIsleLeasePrivate> d;
    friend class QIslePoolPrivate;
};

/// Many isles behind one front.
///
/// Each request goes to the unleased isle with the fewest requests queued or
/// running (ties: a spawned isle before a cold slot, then the lowest index);
/// checkout() lends a whole isle to one holder, for sessions that keep state.
/// Registered functions and exposed objects reach every isle (isles spawned
/// later too), and every isle's print() and failed signal handler reach
/// printed() and handlerFailed().
///
/// Every member may be called from any thread at once. Signals are delivered
/// in the thread the pool lives in. A blocking call (eval, call, exec) made on
/// one of the pool's own Lua threads runs inline on that isle.
///
/// A request bound to an isle when it is made returns that isle's own
/// future. A request that must wait -- every isle is leased, or the isle it
/// is bound to is still being spawned -- is held by the pool: its future is
/// pending, cancel() finishes it at once while it waits, and once an isle
/// takes it (FIFO) the isle's progress and isle.emit() values are relayed
/// to it as they come (within about a millisecond), its result and error
/// when the request ends, and its cancel(), suspend() and resume() to the
/// isle. The pool's helper thread does the relaying, so a
/// continuation attached to a held request's future without a context runs
/// there.
class QISLE_EXPORT QIslePool : public QObject
{
    Q_OBJECT
public:
    /// Creates the pool. With options.warm, spawns every isle (in parallel),
    /// running init on each, and throws QIsleError (Kind::Init) if any init
    /// fails; otherwise an isle is spawned, and runs init, when first needed.
    /// init may run on several Lua threads at once.
    static std::unique_ptr<QIslePool> spawn(QIsle::Init init = {}, const QIslePoolOptions &options = {});

    /// Cancels the pool's queued and running requests (every future ends
    /// finished) and destroys its isles, promptly. An isle still leased is
    /// shut down as by QIsle::shutdown() (what its holder queued still runs)
    /// and lives on until its lease goes. Waits for an isle being spawned to
    /// finish its init.
    ~QIslePool() override;

    /// @name Blocking calls
    /// As on QIsle: run on the least loaded isle and wait; throw QIsleError.
    /// With every isle leased they wait for one to come back. Called on one
    /// of the pool's own Lua threads they run inline on that isle.
    ///@{

    /// QIsle::eval() on one of the isles.
    QVariant eval(const QString &chunk);
    /// QIsle::call() on one of the isles.
    QVariant call(const QString &function, const QVariantList &args = {});
    /// QIsle::exec() on one of the isles.
    QVariant exec(QIsle::ExecFunction fn);
    /// eval() with a timeout and chunk name of its own.
    QVariant eval(const QString &chunk, const QIsleRequestOptions &options);
    /// call() with a timeout of its own.
    QVariant call(const QString &function, const QVariantList &args, const QIsleRequestOptions &options);
    /// exec() with a timeout of its own.
    QVariant exec(QIsle::ExecFunction fn, const QIsleRequestOptions &options);
    ///@}

    /// @name Non-blocking calls
    /// As on QIsle: never throw; a failure arrives in the future. A
    /// QIsleRequestOptions::timeout counts from when the request starts on
    /// its isle, not while it waits in the pool.
    ///@{

    /// QIsle::spawnEval() on the least loaded isle.
    [[nodiscard]] QFuture<QVariant> spawnEval(const QString &chunk);
    /// QIsle::spawnCall() on the least loaded isle.
    [[nodiscard]] QFuture<QVariant> spawnCall(const QString &function, const QVariantList &args = {});
    /// QIsle::spawnExec() on the least loaded isle.
    [[nodiscard]] QFuture<QVariant> spawnExec(QIsle::ExecFunction fn);
    /// spawnEval() with a timeout and chunk name of its own.
    [[nodiscard]] QFuture<QVariant> spawnEval(const QString &chunk, const QIsleRequestOptions &options);
    /// spawnCall() with a timeout of its own.
    [[nodiscard]] QFuture<QVariant> spawnCall(const QString &function, const QVariantList &args,
                                              const QIsleRequestOptions &options);
    /// spawnExec() with a timeout of its own.
    [[nodiscard]] QFuture<QVariant> spawnExec(QIsle::ExecFunction fn, const QIsleRequestOptions &options);
    ///@}

    /// QIsle::registerFunction() on every isle: leased ones, and isles
    /// spawned later (there init runs first, then the registrations in the
    /// order they were made).
    void registerFunction(const QString &name, QIsle::HostFunction fn);
    /// QIsle::registerAsyncFunction() on every isle, as registerFunction().
    void registerAsyncFunction(const QString &name, QIsle::AsyncHostFunction fn);
    /// QIsle::registerFunction() with a context on every isle, as
    /// registerFunction(): fn runs in the thread `context` lives in, whichever
    /// isle's script calls it. context is referenced weakly, once, here: an
    /// isle spawned after it was destroyed still gets the function, and a call
    /// raises the Lua error containing "destroyed". A null context means the
    /// Lua thread of the calling isle.
    void registerFunction(const QString &name, QObject *context, QIsle::HostFunction fn);
    /// QIsle::registerAsyncFunction() with a context on every isle, as the
    /// registerFunction() with a context above.
    void registerAsyncFunction(const QString &name, QObject *context, QIsle::AsyncHostFunction fn);
    /// QIsle::exposeObject() on every isle, as registerFunction(): each isle
    /// gets a Lua value for object, every access runs in object's thread.
    /// object is referenced weakly, once, here: on an isle spawned after it
    /// was destroyed the global exists and using it raises the Lua error
    /// containing "destroyed". Returns without waiting.
    void exposeObject(const QString &name, QObject *object);

    /// @name Leases
    /// An isle is free when it is neither leased nor has requests queued or
    /// running; a cold slot is free, and is spawned (in the caller's thread)
    /// when checked out. A cold slot whose init fails makes these throw
    /// QIsleError (Kind::Init) and stays empty, to be tried again at the
    /// next need. After shutdown() they return an empty lease.
    ///@{

    /// Lends a free isle; blocks until one is free. Meanwhile the calling
    /// thread runs the calls that scripts post to its objects (context
    /// functions, exposed objects), and no other events, as QIsle's blocking
    /// calls do: a script holding the isle checkout() waits for may call into
    /// this thread without deadlock.
    [[nodiscard]] QIsleLease checkout();
    /// checkout(), giving up with an empty lease after timeout (running the
    /// calls posted to this thread meanwhile, as checkout()); timeout <= 0
    /// is tryCheckout().
    [[nodiscard]] QIsleLease checkout(std::chrono::milliseconds timeout);
    /// A free isle now, or an empty lease.
    [[nodiscard]] QIsleLease tryCheckout();
    ///@}

    /// The configured number of isles, cold slots included.
    int size() const;
    /// Isles checked out now.
    int leasedCount() const;
    /// Isles (cold slots included) neither leased nor running or queueing a
    /// request.
    int idleCount() const;

    /// Requests waiting in the pool fail with Kind::Shutdown; every isle,
    /// leased ones included, is shut down as by QIsle::shutdown() (what is
    /// queued on it still runs; calls through a lease then fail Shutdown).
    /// Later requests fail with Kind::Shutdown and checkout() returns an
    /// empty lease. Idempotent.
    void shutdown();
    /// Whether the pool still takes requests: false once shutdown() was called.
    bool isAlive() const;

Q_SIGNALS:
    /// Lua's print(...) on any of the pool's isles, as QIsle::printed().
    void printed(const QString &text);
    /// A Lua handler connected to a signal (obj.sig:connect(fn)) on any of
    /// the pool's isles failed, as QIsle::handlerFailed(); delivered in the
    /// pool's thread, in order with printed().
    void handlerFailed(const QIsleError &error);

private:
    QIslePool();
    Q_DISABLE_COPY_MOVE(QIslePool)

    std::shared_ptr<QIslePoolPrivate> d;
    friend class QIslePoolPrivate;
};
