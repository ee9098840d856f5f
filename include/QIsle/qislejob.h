// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#pragma once

/// \file qislejob.h
/// \brief QIsleJob: one request as a QObject, for QML and bindings.

#include <QIsle/qisleerror.h>
#include <QIsle/qisleglobal.h>

#include <QtCore/QFuture>
#include <QtCore/QObject>
#include <QtCore/QVariant>

#include <memory>
#include <optional>

class QIsleJobPrivate;

/// One request of a QIsle, as a QObject: properties and signals instead of a
/// QFuture, for QML and for Widgets code that prefers bindings.
///
///     auto *job = new QIsleJob(isle->spawnEval(code), this);
///     connect(job, &QIsleJob::finished, this, [job] { ... job->result() ... });
///
/// Notifications arrive in the job's thread (create it on the GUI thread).
/// The job holds nothing but the future: a job whose isle is destroyed
/// finishes canceled. When a request ends, properties change in this order:
/// emitted results, then result / error* / canceled, then running (false);
/// then failed() (only when the request failed, not when it was canceled),
/// and finished() always last.
///
/// Jobs side by side: with QIsleOptions::maxConcurrentRequests other than 1,
/// a job's request may be in progress beside other requests of the same isle
/// (they take turns at their waits, and at QIsleOptions::timeSlice). Each job
/// follows its own request only: its progress, results and error, and its
/// cancel(), suspend() and resume() reach no other job. A job stays running
/// while its request waits (for an async host function's future,
/// isle.sleep, a task, a channel). cancel() reaches a waiting request at
/// once: the future it waits for is canceled too, and the job finishes
/// canceled; suspend() of a waiting request holds it after its wait until
/// resume().
class QISLE_EXPORT QIsleJob : public QObject
{
    Q_OBJECT
    /// Whether the request is queued or running (isRunning()).
    Q_PROPERTY(bool running READ isRunning NOTIFY runningChanged)
    /// Whether the request is suspended (isSuspended()).
    Q_PROPERTY(bool suspended READ isSuspended NOTIFY suspendedChanged)
    /// The script's isle.progress() value (progress()).
    Q_PROPERTY(int progress READ progress NOTIFY progressChanged)
    /// The script's isle.progress() maximum (progressMaximum()).
    Q_PROPERTY(int progressMaximum READ progressMaximum NOTIFY progressMaximumChanged)
    /// The script's isle.progress() text (progressText()).
    Q_PROPERTY(QString progressText READ progressText NOTIFY progressTextChanged)
    /// The request's return value (result()).
    Q_PROPERTY(QVariant result READ result NOTIFY resultChanged)
    /// The error's message, or empty (errorString()).
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorChanged)
    /// The error's line, or -1 (errorLine()).
    Q_PROPERTY(int errorLine READ errorLine NOTIFY errorChanged)
    /// The error's kind ("Runtime", "Syntax", ...), or "" (errorKind()).
    Q_PROPERTY(QString errorKind READ errorKind NOTIFY errorChanged)
    /// Whether the request was canceled (isCanceled()).
    Q_PROPERTY(bool canceled READ isCanceled NOTIFY canceledChanged)

public:
    /// A job that has no request: not running, never finishes.
    explicit QIsleJob(QObject *parent = nullptr);
    /// Watches future (from QIsle::spawnEval/spawnCall/spawnExec). A future
    /// that already finished still gives its signals, once the event loop runs.
    explicit QIsleJob(QFuture<QVariant> future, QObject *parent = nullptr);
    /// Stops watching; the request itself goes on (cancel() it first to stop it).
    ~QIsleJob() override;

    /// The future the job watches.
    QFuture<QVariant> future() const;

    /// True while the request is queued or running.
    bool isRunning() const;
    /// True once the request ended (finished(), failed or canceled).
    bool isFinished() const;
    /// True from suspend() (or the future's suspension) until resume(), a
    /// cancel or the end.
    bool isSuspended() const;
    /// isle.progress(value, maximum, text). Qt throttles the updates (the last
    /// value always arrives) and, while no maximum is set, counts results.
    int progress() const;
    /// The maximum of isle.progress(value, maximum); 0 while none was set.
    int progressMaximum() const;
    /// The text of isle.progress(value, maximum, text).
    QString progressText() const;
    /// Result 0 of the future: the request's return value (invalid until it
    /// finished successfully).
    QVariant result() const;
    /// Values of isle.emit() received so far (results 1..n of the future).
    QVariantList emittedResults() const;
    /// Canceled by a user (or the isle's destruction); false for a failure,
    /// even though Qt 6.4 flags a failed future canceled too.
    bool isCanceled() const;

    /// The error the request failed with; empty / -1 otherwise.
    std::optional<QIsleError> error() const;
    /// The error's QIsleError::message(); empty otherwise.
    QString errorString() const;
    /// The error's QIsleError::line(); -1 otherwise.
    int errorLine() const;
    /// QIsleError::kindName() of the error ("Runtime", "Syntax", ...), or "".
    QString errorKind() const;

public Q_SLOTS:
    /// Cancels the request (QFuture::cancel()).
    void cancel();
    /// Parks the script at its next check (QFuture::suspend()).
    void suspend();
    /// Continues a suspended script (QFuture::resume()).
    void resume();

Q_SIGNALS:
    /// The request started or ended.
    void runningChanged(bool running);
    /// The script was parked or continued.
    void suspendedChanged(bool suspended);
    /// isle.progress() moved the value.
    void progressChanged(int progress);
    /// isle.progress() set a new maximum.
    void progressMaximumChanged(int maximum);
    /// isle.progress() set a new text.
    void progressTextChanged(const QString &text);
    /// The request's return value arrived.
    void resultChanged();
    /// The request failed: errorString, errorLine and errorKind changed.
    void errorChanged();
    /// The request was canceled.
    void canceledChanged(bool canceled);
    /// isle.emit(value): index 1 for the first emit, as in the future.
    void resultEmitted(int index, const QVariant &value);
    /// The request failed (not emitted for a cancel), after the error fields changed.
    void failed();
    /// The request ended, whichever way; always the last notification.
    void finished();

private:
    Q_DISABLE_COPY_MOVE(QIsleJob)
    std::unique_ptr<QIsleJobPrivate> d;
    friend class QIsleJobPrivate;
};
