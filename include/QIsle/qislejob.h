// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

#include <QIsle/qisleerror.h>
#include <QIsle/qisleglobal.h>

#include <QtCore/QFuture>
#include <QtCore/QObject>
#include <QtCore/QVariant>

#include <memory>
#include <optional>

class QIsleJobPrivate;

// One request of a QIsle, as a QObject: properties and signals instead of a
// QFuture, for QML and for Widgets code that prefers bindings.
//
//     auto *job = new QIsleJob(isle->spawnEval(code), this);
//     connect(job, &QIsleJob::finished, this, [job] { ... job->result() ... });
//
// Notifications arrive in the job's thread (create it on the GUI thread).
// The job holds nothing but the future: a job whose isle is destroyed
// finishes canceled. When a request ends, properties change in this order:
// emitted results, then result / error* / canceled, then running (false);
// then failed() (only when the request failed, not when it was canceled),
// and finished() always last.
class QISLE_EXPORT QIsleJob : public QObject
{
    Q_OBJECT
    Q_PROPERTY(bool running READ isRunning NOTIFY runningChanged)
    Q_PROPERTY(bool suspended READ isSuspended NOTIFY suspendedChanged)
    Q_PROPERTY(int progress READ progress NOTIFY progressChanged)
    Q_PROPERTY(int progressMaximum READ progressMaximum NOTIFY progressMaximumChanged)
    Q_PROPERTY(QString progressText READ progressText NOTIFY progressTextChanged)
    Q_PROPERTY(QVariant result READ result NOTIFY resultChanged)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorChanged)
    Q_PROPERTY(int errorLine READ errorLine NOTIFY errorChanged)
    Q_PROPERTY(QString errorKind READ errorKind NOTIFY errorChanged)
    Q_PROPERTY(bool canceled READ isCanceled NOTIFY canceledChanged)

public:
    // A job that has no request: not running, never finishes.
    explicit QIsleJob(QObject *parent = nullptr);
    // Watches future (from QIsle::spawnEval/spawnCall/spawnExec). A future
    // that already finished still gives its signals, once the event loop runs.
    explicit QIsleJob(QFuture<QVariant> future, QObject *parent = nullptr);
    ~QIsleJob() override;

    QFuture<QVariant> future() const;

    bool isRunning() const;
    bool isFinished() const;
    // True from suspend() (or the future's suspension) until resume(), a
    // cancel or the end.
    bool isSuspended() const;
    // isle.progress(value, maximum, text). Qt throttles the updates (the last
    // value always arrives) and, while no maximum is set, counts results.
    int progress() const;
    int progressMaximum() const;
    QString progressText() const;
    // Result 0 of the future: the request's return value (invalid until it
    // finished successfully).
    QVariant result() const;
    // Values of isle.emit() received so far (results 1..n of the future).
    QVariantList emittedResults() const;
    // Canceled by a user (or the isle's destruction); false for a failure,
    // even though Qt 6.4 flags a failed future canceled too.
    bool isCanceled() const;

    // The error the request failed with; empty / -1 otherwise.
    std::optional<QIsleError> error() const;
    QString errorString() const;
    int errorLine() const;
    // QIsleError::kindName() of the error ("Runtime", "Syntax", ...), or "".
    QString errorKind() const;

public Q_SLOTS:
    void cancel();
    void suspend();
    void resume();

Q_SIGNALS:
    void runningChanged(bool running);
    void suspendedChanged(bool suspended);
    void progressChanged(int progress);
    void progressMaximumChanged(int maximum);
    void progressTextChanged(const QString &text);
    void resultChanged();
    void errorChanged();
    void canceledChanged(bool canceled);
    // isle.emit(value): index 1 for the first emit, as in the future.
    void resultEmitted(int index, const QVariant &value);
    void failed();
    void finished();

private:
    Q_DISABLE_COPY_MOVE(QIsleJob)
    std::unique_ptr<QIsleJobPrivate> d;
    friend class QIsleJobPrivate;
};
