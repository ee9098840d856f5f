// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QIsle/qisle.h>
#include <QIsle/qislejob.h>

#include <QtCore/QObject>
#include <QtCore/QPointer>
#include <QtQml/qqmlregistration.h>

#include <memory>
#include <optional>

// The QML element Isle: owns a QIsle, created at the first request with the
// options set on it. evaluate() and call() return a Job (QIsleJob) whose
// properties and signals follow the request.
//
//     Isle { id: lua; libraries: Isle.SandboxLibraries; timeout: 5000 }
//     Isle { id: console; maxConcurrentRequests: 0; timeSlice: 25 } // side by side
//     const job = lua.evaluate("return 6 * 7")
//     job.finished.connect(() => console.log(job.result))
class IsleElement : public QObject
{
    Q_OBJECT
    QML_NAMED_ELEMENT(Isle)
    Q_PROPERTY(Libraries libraries READ libraries WRITE setLibraries NOTIFY librariesChanged)
    Q_PROPERTY(double memoryLimit READ memoryLimit WRITE setMemoryLimit NOTIFY memoryLimitChanged)
    Q_PROPERTY(int timeout READ timeout WRITE setTimeout NOTIFY timeoutChanged)
    Q_PROPERTY(int maxConcurrentRequests READ maxConcurrentRequests WRITE setMaxConcurrentRequests
                       NOTIFY maxConcurrentRequestsChanged)
    Q_PROPERTY(int timeSlice READ timeSlice WRITE setTimeSlice NOTIFY timeSliceChanged)
    Q_PROPERTY(bool busy READ isBusy NOTIFY busyChanged)

public:
    // QIsleOptions' presets.
    enum Libraries { DefaultLibraries, SandboxLibraries, AllLibraries };
    Q_ENUM(Libraries)

    explicit IsleElement(QObject *parent = nullptr);
    ~IsleElement() override;

    // Changing an option restarts the VM at the next request: globals are
    // lost and running jobs end canceled.
    Libraries libraries() const { return m_libraries; }
    void setLibraries(Libraries libraries);
    // Bytes, 0 = no limit. A double: QML has no 64-bit integer literals.
    double memoryLimit() const { return double(m_memoryLimit); }
    void setMemoryLimit(double bytes);
    // Milliseconds a request may run, 0 = no limit.
    int timeout() const { return m_timeout; }
    void setTimeout(int ms);
    // How many jobs may be in progress at once (QIsleOptions::
    // maxConcurrentRequests): 1 (the default) one after another, 0 no limit.
    // Otherwise a job that waits (isle.sleep, a task, a channel, an async
    // function's future) lets the next one run meanwhile; jobs interleave
    // only at their waits (and time slices). Negative is 0.
    int maxConcurrentRequests() const { return m_maxConcurrentRequests; }
    void setMaxConcurrentRequests(int count);
    // Milliseconds a CPU-bound job may run while others are ready before it
    // takes its turn behind them (QIsleOptions::timeSlice); 0 = off,
    // negative is 0.
    int timeSlice() const { return m_timeSlice; }
    void setTimeSlice(int ms);

    // Some job of this isle has not finished yet.
    bool isBusy() const { return m_running > 0; }

    // A new job per request. The Isle keeps a running job alive; a finished
    // one belongs to JavaScript (garbage-collected once unreferenced).
    // chunkName: Lua's chunk name for errors and tracebacks
    // (QIsleRequestOptions::chunkName; "=eval" when empty).
    Q_INVOKABLE QIsleJob *evaluate(const QString &code, const QString &chunkName = QString());
    // args: a JavaScript array (or one value); arrays and objects become Lua
    // sequences and tables, whole numbers Lua integers.
    Q_INVOKABLE QIsleJob *call(const QString &name, const QVariant &args = {});
    // Console input as lua.c sees it: { kind: "Expression" | "Statements" |
    // "Incomplete" | "SyntaxError", chunk, error, line }. Compiles only.
    Q_INVOKABLE QVariantMap classify(const QString &input) const;
    // Closes the VM now (running jobs end canceled); the next request opens a
    // fresh one.
    Q_INVOKABLE void restart();
    // Makes a Lua global (dotted names make tables) for a QML or C++ object:
    // scripts read and write its properties, call its methods and connect to
    // its signals, each in the object's (the GUI) thread (QIsle::exposeObject).
    // The object is referenced weakly; a restarted VM gets it again.
    //     Isle { id: lua; Component.onCompleted: lua.exposeObject("ui.label", label) }
    Q_INVOKABLE void exposeObject(const QString &name, QObject *object);

Q_SIGNALS:
    void librariesChanged();
    void memoryLimitChanged();
    void timeoutChanged();
    void maxConcurrentRequestsChanged();
    void timeSliceChanged();
    void busyChanged();
    // Lua's print(...), tab-joined, without the newline.
    void printed(const QString &text);

private:
    QFuture<QVariant> submit(const std::function<QFuture<QVariant>(QIsle &)> &request);
    QIsleJob *adopt(QFuture<QVariant> future);

    Libraries m_libraries = DefaultLibraries;
    qint64 m_memoryLimit = 0;
    int m_timeout = 0;
    int m_maxConcurrentRequests = 1;
    int m_timeSlice = 0;
    int m_running = 0;
    std::unique_ptr<QIsle> m_isle;
    QList<std::pair<QString, QPointer<QObject>>> m_exposed; // given again to a new VM
    std::optional<QIsleError> m_spawnError; // the options do not start a VM
};
