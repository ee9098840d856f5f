// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "isleelement.h"

#include "jsvalue_p.h"

#include <QtCore/QPromise>
#include <QtQml/QQmlEngine>

#if __has_include(<QIsle/qislerepl.h>)
#  include <QIsle/qislerepl.h>
#  define QISLE_HAS_REPL 1
#endif

IsleElement::IsleElement(QObject *parent) : QObject(parent) {}

IsleElement::~IsleElement()
{
    m_isle.reset(); // before the running jobs (children) go
}

void IsleElement::setLibraries(Libraries libraries)
{
    if (m_libraries == libraries)
        return;
    m_libraries = libraries;
    restart();
    Q_EMIT librariesChanged();
}

void IsleElement::setMemoryLimit(double bytes)
{
    const qint64 limit = bytes > 0 ? qint64(qMin(bytes, 9.0e18)) : 0;
    if (m_memoryLimit == limit)
        return;
    m_memoryLimit = limit;
    restart();
    Q_EMIT memoryLimitChanged();
}

void IsleElement::setTimeout(int ms)
{
    if (m_timeout == ms)
        return;
    m_timeout = ms;
    restart();
    Q_EMIT timeoutChanged();
}

void IsleElement::setMaxConcurrentRequests(int count)
{
    count = qMax(0, count);
    if (m_maxConcurrentRequests == count)
        return;
    m_maxConcurrentRequests = count;
    restart();
    Q_EMIT maxConcurrentRequestsChanged();
}

void IsleElement::setTimeSlice(int ms)
{
    ms = qMax(0, ms);
    if (m_timeSlice == ms)
        return;
    m_timeSlice = ms;
    restart();
    Q_EMIT timeSliceChanged();
}

void IsleElement::restart()
{
    m_isle.reset();
    m_spawnError.reset();
}

QFuture<QVariant> IsleElement::submit(const std::function<QFuture<QVariant>(QIsle &)> &request)
{
    if (!m_isle && !m_spawnError) {
        QIsleOptions options;
        options.libraries = m_libraries == SandboxLibraries ? QIsleOptions::SandboxLibraries
                : m_libraries == AllLibraries               ? QIsleOptions::AllLibraries
                                                            : QIsleOptions::DefaultLibraries;
        options.memoryLimit = qsizetype(qMax<qint64>(0, m_memoryLimit));
        options.timeout = std::chrono::milliseconds(qMax(0, m_timeout));
        options.maxConcurrentRequests = m_maxConcurrentRequests;
        options.timeSlice = std::chrono::milliseconds(m_timeSlice);
        options.threadName = QStringLiteral("QIsle (QML)");
        try {
            m_isle = QIsle::spawn({}, options);
            connect(m_isle.get(), &QIsle::printed, this, &IsleElement::printed);
            for (const auto &[name, object] : std::as_const(m_exposed)) {
                if (object)
                    m_isle->exposeObject(name, object);
            }
        } catch (const QIsleError &e) {
            m_spawnError = e; // every request fails with it until the options change
        }
    }
    if (m_isle)
        return request(*m_isle);
    QPromise<QVariant> promise;
    promise.start();
    promise.setException(*m_spawnError);
    promise.finish();
    return promise.future();
}

void IsleElement::exposeObject(const QString &name, QObject *object)
{
    m_exposed.append({name, QPointer<QObject>(object)});
    if (m_isle)
        m_isle->exposeObject(name, object);
}

QIsleJob *IsleElement::adopt(QFuture<QVariant> future)
{
    auto *job = new QIsleJob(std::move(future), this);
    // Running, the job is ours (no garbage collection may take it half-way);
    // finished, it is JavaScript's.
    QQmlEngine::setObjectOwnership(job, QQmlEngine::CppOwnership);
    if (m_running++ == 0)
        Q_EMIT busyChanged();
    connect(job, &QIsleJob::finished, this, [this, job] {
        job->setParent(nullptr);
        QQmlEngine::setObjectOwnership(job, QQmlEngine::JavaScriptOwnership);
        if (--m_running == 0)
            Q_EMIT busyChanged();
    });
    return job;
}

QIsleJob *IsleElement::evaluate(const QString &code, const QString &chunkName)
{
    QIsleRequestOptions options;
    options.chunkName = chunkName;
    return adopt(submit([&](QIsle &isle) { return isle.spawnEval(code, options); }));
}

QIsleJob *IsleElement::call(const QString &name, const QVariant &args)
{
    QVariant converted = JsValue::toLua(args);
    QVariantList list;
    if (converted.typeId() == QMetaType::QVariantList)
        list = converted.toList();
    else if (converted.isValid())
        list = {converted};
    return adopt(submit([&](QIsle &isle) { return isle.spawnCall(name, list); }));
}

QVariantMap IsleElement::classify(const QString &input) const
{
#ifdef QISLE_HAS_REPL
    const QIsleReplInput r = qisleClassifyInput(input);
    QString kind;
    switch (r.kind) {
    case QIsleReplInput::Kind::Expression: kind = QStringLiteral("Expression"); break;
    case QIsleReplInput::Kind::Statements: kind = QStringLiteral("Statements"); break;
    case QIsleReplInput::Kind::Incomplete: kind = QStringLiteral("Incomplete"); break;
    case QIsleReplInput::Kind::SyntaxError: kind = QStringLiteral("SyntaxError"); break;
    }
    return {{QStringLiteral("kind"), kind},
            {QStringLiteral("chunk"), r.chunk},
            {QStringLiteral("error"), r.error},
            {QStringLiteral("line"), r.line}};
#else
    // Without the classifier, the input runs as it is.
    return {{QStringLiteral("kind"), QStringLiteral("Statements")},
            {QStringLiteral("chunk"), input},
            {QStringLiteral("error"), QString()},
            {QStringLiteral("line"), -1}};
#endif
}
