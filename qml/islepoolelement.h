// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QIsle/qislejob.h>
#include <QIsle/qislepool.h>

#include <QtCore/QObject>
#include <QtCore/QPointer>
#include <QtQml/qqmlregistration.h>

#include <functional>
#include <memory>
#include <optional>

// The QML element IslePool: owns a QIslePool, created at the first request
// with the options set on it. evaluate() and call() return a Job (QIsleJob),
// as Isle's do, but each request goes to whichever isle has the least to
// do: requests are independent (a global one sets may be missing in the
// next). For a console or anything that keeps state between requests, use
// an Isle (one per session).
//
//     IslePool { id: workers; size: 4; libraries: IslePool.SandboxLibraries }
//     for (const row of rows) {
//         const job = workers.call("score", [row])
//         job.finished.connect(() => console.log(job.result))
//     }
//
// A separate element rather than Isle { poolSize: 4 }: Isle keeps one VM, so
// `x = 1` in one evaluate() is seen by the next; a pool property on it would
// silently break that for every script written against it. IslePool says
// in its name that requests do not share a VM.
class IslePoolElement : public QObject
{
    Q_OBJECT
    QML_NAMED_ELEMENT(IslePool)
    Q_PROPERTY(int size READ size WRITE setSize NOTIFY sizeChanged)
    Q_PROPERTY(bool warm READ warm WRITE setWarm NOTIFY warmChanged)
    Q_PROPERTY(Libraries libraries READ libraries WRITE setLibraries NOTIFY librariesChanged)
    Q_PROPERTY(double memoryLimit READ memoryLimit WRITE setMemoryLimit NOTIFY memoryLimitChanged)
    Q_PROPERTY(int timeout READ timeout WRITE setTimeout NOTIFY timeoutChanged)
    Q_PROPERTY(bool busy READ isBusy NOTIFY busyChanged)

public:
    // QIsleOptions' presets (as Isle's).
    enum Libraries { DefaultLibraries, SandboxLibraries, AllLibraries };
    Q_ENUM(Libraries)

    explicit IslePoolElement(QObject *parent = nullptr);
    ~IslePoolElement() override;

    // Changing an option restarts the pool at the next request: running
    // jobs end canceled. Isles; 0 = one per CPU (QThread::idealThreadCount()).
    int size() const { return m_size; }
    void setSize(int size);
    // true: every isle starts with the pool (at the first request); false:
    // each isle starts when a request first needs it.
    bool warm() const { return m_warm; }
    void setWarm(bool warm);
    Libraries libraries() const { return m_libraries; }
    void setLibraries(Libraries libraries);
    // Bytes per isle, 0 = no limit. A double: QML has no 64-bit integer literals.
    double memoryLimit() const { return double(m_memoryLimit); }
    void setMemoryLimit(double bytes);
    // Milliseconds a request may run once it started on its isle, 0 = no limit.
    int timeout() const { return m_timeout; }
    void setTimeout(int ms);

    // Some job of this pool has not finished yet.
    bool isBusy() const { return m_running > 0; }

    // A new job per request, on the least loaded isle. The pool keeps a
    // running job alive; a finished one belongs to JavaScript.
    Q_INVOKABLE QIsleJob *evaluate(const QString &code, const QString &chunkName = QString());
    // args: a JavaScript array (or one value), as Isle.call.
    Q_INVOKABLE QIsleJob *call(const QString &name, const QVariant &args = {});
    // Stops every isle now (running jobs end canceled); the next request
    // starts a fresh pool.
    Q_INVOKABLE void restart();
    // A Lua global for a QML or C++ object on every isle (QIslePool::
    // exposeObject); a restarted pool gets it again.
    Q_INVOKABLE void exposeObject(const QString &name, QObject *object);

Q_SIGNALS:
    void sizeChanged();
    void warmChanged();
    void librariesChanged();
    void memoryLimitChanged();
    void timeoutChanged();
    void busyChanged();
    // Lua's print(...) on any isle, tab-joined, without the newline.
    void printed(const QString &text);
    // A Lua handler a script connected to a signal failed, on any isle:
    // the error's message and kind ("Runtime", "Timeout", ...).
    void handlerFailed(const QString &message, const QString &kind);

private:
    QFuture<QVariant> submit(const std::function<QFuture<QVariant>(QIslePool &)> &request);
    QIsleJob *adopt(QFuture<QVariant> future);
    template <typename T>
    void setOption(T &option, T value, void (IslePoolElement::*changed)());

    int m_size = 0;
    bool m_warm = true;
    Libraries m_libraries = DefaultLibraries;
    qint64 m_memoryLimit = 0;
    int m_timeout = 0;
    int m_running = 0;
    std::unique_ptr<QIslePool> m_pool;
    QList<std::pair<QString, QPointer<QObject>>> m_exposed; // given again to a new pool
    std::optional<QIsleError> m_spawnError; // the options do not start a pool
};
