// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "islepoolelement.h"

#include "jsvalue_p.h"

#include <QtCore/QPromise>
#include <QtQml/QQmlEngine>

IslePoolElement::IslePoolElement(QObject *parent) : QObject(parent) {}

IslePoolElement::~IslePoolElement()
{
    m_pool.reset(); // before the running jobs (children) go
}

template <typename T>
void IslePoolElement::setOption(T &option, T value, void (IslePoolElement::*changed)())
{
    if (option == value)
        return;
    option = value;
    restart();
    Q_EMIT(this->*changed)();
}

void IslePoolElement::setSize(int size)
{
    setOption(m_size, qMax(0, size), &IslePoolElement::sizeChanged);
}

void IslePoolElement::setWarm(bool warm)
{
    setOption(m_warm, warm, &IslePoolElement::warmChanged);
}

void IslePoolElement::setLibraries(Libraries libraries)
{
    setOption(m_libraries, libraries, &IslePoolElement::librariesChanged);
}

void IslePoolElement::setMemoryLimit(double bytes)
{
    setOption(m_memoryLimit, bytes > 0 ? qint64(qMin(bytes, 9.0e18)) : qint64(0), &IslePoolElement::memoryLimitChanged);
}

void IslePoolElement::setTimeout(int ms)
{
    setOption(m_timeout, qMax(0, ms), &IslePoolElement::timeoutChanged);
}

void IslePoolElement::restart()
{
    m_pool.reset();
    m_spawnError.reset();
}

QFuture<QVariant> IslePoolElement::submit(const std::function<QFuture<QVariant>(QIslePool &)> &request)
{
    if (!m_pool && !m_spawnError) {
        QIslePoolOptions options;
        options.size = m_size;
        options.warm = m_warm;
        options.isle.libraries = m_libraries == SandboxLibraries ? QIsleOptions::SandboxLibraries
                : m_libraries == AllLibraries                    ? QIsleOptions::AllLibraries
                                                                 : QIsleOptions::DefaultLibraries;
        options.isle.memoryLimit = qsizetype(qMax<qint64>(0, m_memoryLimit));
        options.isle.timeout = std::chrono::milliseconds(qMax(0, m_timeout));
        options.isle.threadName = QStringLiteral("QIsle (QML pool)");
        try {
            m_pool = QIslePool::spawn({}, options);
            connect(m_pool.get(), &QIslePool::printed, this, &IslePoolElement::printed);
            connect(m_pool.get(), &QIslePool::handlerFailed, this, [this](const QIsleError &error) {
                Q_EMIT handlerFailed(error.message(), QIsleError::kindName(error.kind()));
            });
            for (const auto &[name, object] : std::as_const(m_exposed)) {
                if (object)
                    m_pool->exposeObject(name, object);
            }
        } catch (const QIsleError &e) {
            m_spawnError = e; // every request fails with it until the options change
        }
    }
    if (m_pool)
        return request(*m_pool);
    QPromise<QVariant> promise;
    promise.start();
    promise.setException(*m_spawnError);
    promise.finish();
    return promise.future();
}

void IslePoolElement::exposeObject(const QString &name, QObject *object)
{
    m_exposed.append({name, QPointer<QObject>(object)});
    if (m_pool)
        m_pool->exposeObject(name, object);
}

QIsleJob *IslePoolElement::adopt(QFuture<QVariant> future)
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

QIsleJob *IslePoolElement::evaluate(const QString &code, const QString &chunkName)
{
    QIsleRequestOptions options;
    options.chunkName = chunkName;
    return adopt(submit([&](QIslePool &pool) { return pool.spawnEval(code, options); }));
}

QIsleJob *IslePoolElement::call(const QString &name, const QVariant &args)
{
    QVariant converted = JsValue::toLua(args);
    QVariantList list;
    if (converted.typeId() == QMetaType::QVariantList)
        list = converted.toList();
    else if (converted.isValid())
        list = {converted};
    return adopt(submit([&](QIslePool &pool) { return pool.spawnCall(name, list); }));
}
