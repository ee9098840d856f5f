// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "isle/worker_p.h"

#include "lualib/islelib_p.h"
#include "isle/requestqueue_p.h"
#include "lualib/safety_p.h"
#include "luautil/luaexception_p.h"
#include "luautil/stackguard_p.h"
#include "values/value_p.h"

#include <QtCore/QThread>


const QEvent::Type Worker::DrainEvent = QEvent::Type(QEvent::registerEventType());

namespace {
constexpr char DefaultChunkName[] = "=eval";
} // namespace

const QString &Worker::argumentPath(int i)
{
    static const QList<QString> names = [] {
        QList<QString> list;
        for (int n = 0; n < 32; ++n)
            list << QStringLiteral("args[%1]").arg(n);
        return list;
    }();
    if (i < names.size())
        return names.at(i);
    thread_local QString formatted;
    formatted = QStringLiteral("args[%1]").arg(i);
    return formatted;
}

struct Worker::Job
{
    Worker *worker;
    Request *request;
    QVariant result;
};

Worker::Worker(std::shared_ptr<RequestQueue> queue, const QIsleOptions &options)
    : m_queue(std::move(queue)), m_options(options), m_allocator(std::size_t(qMax<qsizetype>(0, options.memoryLimit)))
{
    m_L = lua_newstate(&Allocator::allocate, &m_allocator);
    if (m_L)
        m_context.attach(m_L);
}

Worker::~Worker()
{
    close();
}

void Worker::close()
{
    if (!m_L)
        return;
    // Closing runs __gc finalizers: no limit may make them fail half-way.
    m_allocator.setLimit(0);
    lua_close(m_L);
    m_L = nullptr;
}

bool Worker::event(QEvent *event)
{
    if (event->type() == DrainEvent) {
        drain();
        return true;
    }
    return QObject::event(event);
}

void Worker::drain()
{
    m_stop.burstBegin();
    for (;;) {
        // lowLatencySpin: before going back to sleep, look a while longer --
        // still marked busy, so callers post no wake-up meanwhile.
        const bool spin = m_options.lowLatencySpin.count() > 0;
        RequestQueue::Batch batch = m_queue->takeBatch(!spin);
        if (batch.empty() && spin) {
            m_queue->spinForWork(m_options.lowLatencySpin);
            batch = m_queue->takeBatch();
        }
        if (batch.empty()) {
            m_stop.burstEnd();
            return;
        }
        for (auto &request : batch) {
            if (request->type == Request::Type::Shutdown) {
                m_stop.burstEnd();
                m_queue->markClosing();
                close();
                request->promise.finish();
                QThread::currentThread()->quit();
                continue;
            }
            m_queue->leftWaiting();
            run(*request);
        }
    }
}

void Worker::runInline(Request &request)
{
    run(request);
}

void Worker::run(Request &request)
{
    QPromise<QVariant> &promise = request.promise;
    if (promise.isCanceled() || m_queue->isAborted() || !m_L) {
        if (!m_L)
            promise.setException(QIsleError(QIsleError::Kind::Shutdown, QStringLiteral("the isle is shut down")));
        promise.future().cancel(); // a queued request that is canceled never runs
        promise.finish();
        return;
    }

    RunningRequest running;
    running.promise = &request.promise;
    // request.timeout: > 0 its own, 0 the isle's, < 0 none (QIsleRequestOptions).
    const auto timeout = request.timeout.count() != 0 ? request.timeout : m_options.timeout;
    if (timeout.count() > 0)
        running.deadline = std::chrono::steady_clock::now() + timeout;

    const bool outermost = m_depth == 0;
    // A nested request's own deadline may come first: the stop monitor must
    // watch the earliest one (restored when the nested request ends).
    std::chrono::steady_clock::time_point outerDeadline;
    if (outermost) {
        m_queue->setRunning(&request.state, running.deadline);
        m_error = {};
    } else {
        outerDeadline = m_queue->tightenDeadline(running.deadline);
    }
    ++m_depth;
    lua_State *L = activeState();
    m_stop.begin(running, L);

    const int base = lua_gettop(L);
    Job job{this, &request, {}};
    lua_pushcfunction(L, messageHandler);
    lua_pushcfunction(L, protectedRun);
    lua_pushlightuserdata(L, &job);
    const int status = lua_pcall(L, 1, 0, base + 1);
    std::optional<QIsleError> error;
    if (status != LUA_OK) {
        error = makeError(L, status, request);
        if (status == LUA_ERRMEM || error->kind() == QIsleError::Kind::Memory)
            lua_gc(L, LUA_GCCOLLECT); // serve the next request with what can be freed
    }
    lua_settop(L, base);

    m_stop.end(running);
    --m_depth;
    if (outermost)
        m_queue->clearRunning();
    else
        m_queue->restoreDeadline(outerDeadline);

    if (running.stop == QIsleError::Kind::Cancelled) {
        promise.future().cancel(); // an outer request's cancel stops this one too
    } else if (running.stop == QIsleError::Kind::Timeout) {
        promise.setException(QIsleError(QIsleError::Kind::Timeout,
                                        QStringLiteral("request ran past its timeout of %1 ms")
                                                .arg(timeout.count())));
    } else if (error) {
        promise.setException(*error);
    } else {
        const QVariant &result = job.result; // see isle.emit: announces index 0 itself
        promise.addResult(result, 0);
    }
    promise.finish();
}

// Everything a request does to the VM runs here, inside lua_pcall, so that
// neither a Lua error nor a memory error can escape unprotected. C++
// exceptions must not cross Lua's frames: they end here as Lua errors.
int Worker::protectedRun(lua_State *L)
{
    auto *job = static_cast<Job *>(lua_touserdata(L, 1));
    lua_pop(L, 1);
    Worker *self = job->worker;
    try {
        job->result = self->execute(L, *job->request);
    } catch (const QIsleError &e) {
        self->raise(L, e.kind(), e.message());
    } catch (const std::bad_alloc &) {
        self->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    } catch (const std::exception &e) {
        self->raise(L, QIsleError::Kind::Callback, QString::fromLocal8Bit(e.what()));
    } catch (lua_longjmp *) {
        throw; // Lua's own error: lua_pcall takes it
    } catch (...) {
        self->raise(L, QIsleError::Kind::Callback, QStringLiteral("unknown C++ exception"));
    }
    return 0;
}

QVariant Worker::execute(lua_State *L, Request &request)
{
    switch (request.type) {
    case Request::Type::Eval: {
        const QByteArray &code = request.utf8;
        // "t": text only; precompiled chunks never load.
        const char *name = request.chunkName.isEmpty() ? DefaultChunkName : request.chunkName.constData();
        const int status = luaL_loadbufferx(L, code.constData(), size_t(code.size()), name, "t");
        if (status == LUA_ERRSYNTAX)
            raise(L, QIsleError::Kind::Syntax, QString::fromUtf8(lua_tostring(L, -1)));
        if (status != LUA_OK)
            lua_error(L);
        lua_call(L, 0, 1);
        return Value::read(L, -1, QStringLiteral("result"));
    }
    case Request::Type::Call:
        return callFunction(L, request);
    case Request::Type::Exec:
        return request.fn(L);
    case Request::Type::Shutdown:
        break;
    }
    return {};
}

QVariant Worker::callFunction(lua_State *L, Request &request)
{
    // Resolve a dotted path ("string.upper") with raw reads: resolving a
    // name must not run a script's metamethods.
    const QByteArray &path = request.utf8;
    lua_pushglobaltable(L);
    for (qsizetype start = 0; start <= path.size();) {
        qsizetype end = path.indexOf('.', start);
        if (end < 0)
            end = path.size();
        if (!lua_istable(L, -1) || end == start)
            raise(L, QIsleError::Kind::NotFound, QStringLiteral("no function '%1'").arg(request.text));
        lua_pushlstring(L, path.constData() + start, size_t(end - start));
        lua_rawget(L, -2);
        lua_remove(L, -2);
        start = end + 1;
    }
    bool callable = lua_isfunction(L, -1);
    if (!callable && luaL_getmetafield(L, -1, "__call") != LUA_TNIL) {
        lua_pop(L, 1); // the __call field: lua_call uses it itself
        callable = true;
    }
    if (!callable)
        raise(L, QIsleError::Kind::NotFound, QStringLiteral("'%1' is not a function").arg(request.text));

    // Converting every argument before the call: a bad one runs nothing.
    luaL_checkstack(L, int(request.args.size()) + LUA_MINSTACK, "too many arguments");
    for (qsizetype i = 0; i < request.args.size(); ++i)
        Value::push(L, request.args.at(i), argumentPath(int(i) + 1));
    lua_call(L, int(request.args.size()), 1);
    return Value::read(L, -1, QStringLiteral("result"));
}

void Worker::raise(lua_State *L, QIsleError::Kind kind, const QString &message)
{
    m_error.kind = kind;
    m_error.message = message;
    {
        const QByteArray utf8 = message.toUtf8();
        lua_pushlstring(L, utf8.constData(), size_t(utf8.size()));
    }
    lua_error(L);
    Q_UNREACHABLE(); // lua_error throws
}

// Runs where the error arose, before the stack unwinds: the only moment the
// traceback and the failing line can be read.
int Worker::messageHandler(lua_State *L)
{
    Worker *self = from(L);
    if (self->stopControl().stopping())
        return 1; // a stop needs no traceback
    const char *message = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : nullptr;
    luaL_traceback(L, L, message, 1);
    self->m_error.traceback = QString::fromUtf8(lua_tostring(L, -1));
    lua_pop(L, 1);
    // The failing line: the innermost Lua function on the stack.
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); ++level) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            self->m_error.line = ar.currentline;
            break;
        }
    }
    return 1;
}

// "name:" as Lua writes it in front of an error of this request's chunk
// (luaO_chunkid: "=x" as is, "@file" shortened, source text as [string "..."]).
// Lua's own function computes it: load an empty chunk of that name.
QString Worker::chunkPrefix(lua_State *L, const Request &request)
{
    const char *name = request.chunkName.isEmpty() ? DefaultChunkName : request.chunkName.constData();
    if (!lua_checkstack(L, 2))
        return {};
    if (luaL_loadbufferx(L, "", 0, name, "t") != LUA_OK) {
        lua_pop(L, 1); // the memory error's message
        return {};
    }
    lua_Debug ar;
    lua_getinfo(L, ">S", &ar); // pops the function
    return QString::fromUtf8(ar.short_src) + QLatin1Char(':');
}

QIsleError Worker::makeError(lua_State *L, int status, const Request &request)
{
    using Kind = QIsleError::Kind;
    if (RunningRequest *running = m_stop.current(); running && running->stop)
        return QIsleError(*running->stop, QString());

    QString message;
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        size_t length = 0;
        const char *text = lua_tolstring(L, -1, &length);
        message = QString::fromUtf8(text, qsizetype(length));
    } else {
        message = Value::describeErrorObject(L, -1);
    }

    Kind kind = Kind::Runtime;
    if (status == LUA_ERRMEM)
        kind = Kind::Memory;
    else if (status == LUA_ERRSYNTAX)
        kind = Kind::Syntax;
    else if (m_error.kind && (message == m_error.message || message.endsWith(m_error.message)))
        kind = *m_error.kind; // raise()'s error, possibly prefixed by a position

    int line = m_error.line;
    // "name:7: message" naming this request's own chunk: the line moves into
    // line(), the message stays readable. Another chunk's prefix is kept.
    if (request.type == Request::Type::Eval) {
        const QString prefix = chunkPrefix(L, request);
        if (!prefix.isEmpty() && message.startsWith(prefix)) {
            const qsizetype colon = message.indexOf(QLatin1Char(':'), prefix.size());
            bool ok = false;
            const int prefixLine = message.mid(prefix.size(), colon - prefix.size()).toInt(&ok);
            if (colon > 0 && ok) {
                line = prefixLine;
                message = message.mid(colon + 1).trimmed();
            }
        }
    }
    return QIsleError(kind, message, kind == Kind::Syntax ? QString() : m_error.traceback, line);
}

void Worker::openLibraries(lua_State *L)
{
    StackGuard guard(L);
    Safety::openLibraries(L, m_options.libraries);
    m_stop.install(L, m_options, [queue = m_queue.get()] { return queue->stopPending(); });
    IsleLib::open(L);
}
