// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "objects/objectlib_p.h"

#include "async/scheduler_p.h"
#include "isle/worker_p.h"
#include "lualib/islelib_p.h"
#include "luautil/luaexception_p.h"
#include "luautil/stackguard_p.h"
#include "objects/arguments_p.h"
#include "objects/classinfo_p.h"
#include "objects/islelink_p.h"
#include "objects/luawait_p.h"
#include "objects/mailbox_p.h"
#include "objects/signalhub_p.h"
#include "stop/stopcontrol_p.h"
#include "values/value_p.h"

#include <QtCore/QThread>
#include <QtCore/QTimer>

#include <chrono>
#include <cmath>
#include <limits>

namespace {

// Registry keys (their addresses).
char StateKey;       // LibState userdata
char ObjectsKey;     // address -> userdata, weak values: one Lua value per object
char ObjectMetaKey;  // metatable of objects
char ClassesKey;     // ClassInfo* -> members table (name -> cached value)
char SignalMetaKey;  // metatable of obj.sig
char ConnectionMetaKey;
char ContextMetaKey; // the upvalue of a context function
char HandlersKey;    // connection id -> Lua handler function
char PendingMetaKey; // a wait kept across a yield

struct LibState
{
    std::shared_ptr<IsleLink> link; // null in a VM QIsle did not open
    lua_Integer nextId = 0;
};

// The userdata of a QObject. `object` is the only way to it; on the Lua
// thread it is dereferenced only when the object lives in the Lua thread.
struct ObjectHandle
{
    QPointer<QObject> object;
    QObject *address;   // identity
    QThread *thread;    // where it lives, as far as the Lua thread knows
    const ClassInfo *cls;
};

// obj.sig: the object userdata is its user value.
struct SignalHandle
{
    const MemberInfo *member;
    const ClassInfo *cls;
};

struct Connection
{
    std::shared_ptr<LuaSignalHandler> handler;
};

struct ContextFunction
{
    QPointer<QObject> context;
    QThread *thread;
    std::shared_ptr<const QIsle::HostFunction> fn;           // one of these two
    std::shared_ptr<const QIsle::AsyncHostFunction> asyncFn;
    QString name;
};

// ---------------------------------------------------------------------------
// The one trampoline of this file: C++ exceptions become Lua errors; Lua's
// own pass through. Nested blocking calls and child requests run on this
// coroutine meanwhile.

template <lua_CFunction F>
int protect(lua_State *L)
{
    Worker *worker = Worker::from(L);
    struct ActiveScope
    {
        Worker *worker;
        lua_State *previous;
        ~ActiveScope() { worker->setActiveState(previous); }
    } scope{worker, worker->activeState()};
    worker->setActiveState(L);
    try {
        return F(L);
    } catch (lua_longjmp *) {
        throw;
    } catch (const QIsleError &e) {
        worker->raise(L, e.kind(), e.message());
    } catch (const std::bad_alloc &) {
        worker->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    } catch (const std::exception &e) {
        worker->raise(L, QIsleError::Kind::Callback, QString::fromLocal8Bit(e.what()));
    } catch (...) {
        worker->raise(L, QIsleError::Kind::Callback, QStringLiteral("unknown C++ exception"));
    }
}

// The same for a continuation (lua_KFunction) that a wait resumes.
template <lua_KFunction K>
int protectK(lua_State *L, int status, lua_KContext ctx)
{
    Worker *worker = Worker::from(L);
    struct ActiveScope
    {
        Worker *worker;
        lua_State *previous;
        ~ActiveScope() { worker->setActiveState(previous); }
    } scope{worker, worker->activeState()};
    worker->setActiveState(L);
    try {
        return K(L, status, ctx);
    } catch (lua_longjmp *) {
        throw;
    } catch (const QIsleError &e) {
        worker->raise(L, e.kind(), e.message());
    } catch (const std::bad_alloc &) {
        worker->raise(L, QIsleError::Kind::Memory, QStringLiteral("not enough memory"));
    } catch (const std::exception &e) {
        worker->raise(L, QIsleError::Kind::Callback, QString::fromLocal8Bit(e.what()));
    } catch (...) {
        worker->raise(L, QIsleError::Kind::Callback, QStringLiteral("unknown C++ exception"));
    }
}

[[noreturn]] void fail(const QString &message)
{
    throw QIsleError(QIsleError::Kind::Runtime, message);
}

LibState *state(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &StateKey);
    auto *s = static_cast<LibState *>(lua_touserdata(L, -1));
    lua_pop(L, 1);
    return s;
}

const void *queueOf(lua_State *L)
{
    LibState *s = state(L);
    return s && s->link ? s->link->queueIdentity() : nullptr;
}

void pushValue(lua_State *L, const QVariant &v, const QString &path)
{
    Value::push(L, v, path);
}

template <typename T>
int destroy(lua_State *L)
{
    static_cast<T *>(lua_touserdata(L, 1))->~T();
    return 0;
}

// ---------------------------------------------------------------------------
// Reaching the object

ObjectHandle *toHandle(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
        return nullptr;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ObjectMetaKey);
    const bool isObject = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return isObject ? static_cast<ObjectHandle *>(lua_touserdata(L, idx)) : nullptr;
}

QString destroyedMessage(const QString &what)
{
    return QStringLiteral("%1: the object was destroyed").arg(what);
}

// The object, when it lives in this (the Lua) thread; nullptr when it lives
// in another, where it must not be touched from here. Throws once destroyed.
QObject *local(ObjectHandle *h, const QString &what)
{
    QObject *o = h->object.data();
    if (!o)
        fail(destroyedMessage(what));
    QThread *self = QThread::currentThread();
    if (h->thread != self)
        return nullptr;
    QThread *now = o->thread(); // only this thread could have moved it
    if (now == self)
        return o;
    h->thread = now;
    return nullptr;
}

// ---------------------------------------------------------------------------
// Waiting for an answer from another thread. Where the script can yield, it
// yields and the Lua thread serves other work meanwhile (src/async); where it
// cannot, a call into another thread blocks the Lua thread, stoppably
// (DESIGN, Async edge cases).

// What to do with an answer once it came.
enum class Then { Push, PushPath, Nothing, Connected, WaitAttached, WaitFired, AsyncReturned };

// A wait, kept on the Lua stack (a userdata) across a yield: no C++ local
// survives one.
struct Pending
{
    QFuture<QVariant> future;
    Then then = Then::Push;
    const MemberInfo *member = nullptr;     // its path names what is awaited
    std::weak_ptr<PostedCall> call;         // dropped when a blocked script stops
    std::shared_ptr<PostedCall> toPost;     // posted once the wait is set up
    std::shared_ptr<ChildInbox> children;   // a blocked script runs its children meanwhile
    std::shared_ptr<SignalHandler> handler; // Connected: the Lua handler; waits: the waiter
    int connectionId = 0;                   // Connected
    lua_Number timeoutMs = -1;              // sig:wait; < 0: none
    bool waiting = false;                   // WaitAttached/WaitFired: the waiter is attached

    Pending() = default;
    Pending(Pending &&) = default; // a moved-from Pending holds no handler: it detaches nothing
    Pending &operator=(Pending &&) = default;
    Q_DISABLE_COPY(Pending)
    ~Pending()
    {
        if (waiting && handler)
            handler->detach();
    }
    QString what() const { return member ? member->path : QStringLiteral("the call"); }
};

int finishAnswer(lua_State *L, int idx);

// A stop raised at a wait: the pending one, or a cancel (shutdown's deadline).
[[noreturn]] void raiseStopAtWait(lua_State *L)
{
    StopControl &stop = StopControl::from(L);
    RunningRequest *r = stop.current();
    if (!r->stop) {
        r->stop = stop.pendingStop().value_or(QIsleError::Kind::Cancelled);
        r->stopRaisedAt = std::chrono::steady_clock::now();
    }
    stop.raiseStop(L);
}

// A stopped request starts no wait; past shutdown's deadline for waits, the
// request is canceled.
bool mustNotWait(lua_State *L)
{
    StopControl &stop = StopControl::from(L);
    Scheduler &scheduler = Scheduler::from(L);
    if (scheduler.shutdownExpired() && scheduler.running() && scheduler.running()->own)
        scheduler.running()->own->cancel();
    return stop.stopping() || stop.pendingStop().has_value();
}

int resumeAnswer(lua_State *L, int, lua_KContext ctx)
{
    Scheduler &scheduler = Scheduler::from(L);
    const WaitState wait = std::move(scheduler.running()->wait);
    scheduler.clearWait();
    if (wait.outcome == WaitState::Outcome::Stop)
        raiseStopAtWait(L); // the scheduler canceled the awaited future: an unstarted call is dropped
    StopControl::from(L).checkpoint(L);
    return finishAnswer(L, int(ctx));
}

// Waits for the future of the Pending at idx, then finishes.
int waitAnswer(lua_State *L, int idx)
{
    auto *p = static_cast<Pending *>(lua_touserdata(L, idx));
    if (!p->future.isFinished()) {
        Scheduler &scheduler = Scheduler::from(L);
        if (scheduler.canWait(L)) {
            if (mustNotWait(L)) {
                p->toPost.reset(); // never posted: dropped
                p->future.cancel();
                raiseStopAtWait(L);
            }
            // The watcher first, then the call: the answer (posted back to
            // this thread) comes after the watcher's own events.
            scheduler.awaitFuture(p->future);
            if (p->toPost)
                PostedCall::post(std::exchange(p->toPost, nullptr)); // its event owns it now
            return scheduler.yield(L, protectK<resumeAnswer>, lua_KContext(idx));
        }
        if (p->toPost)
            PostedCall::post(std::exchange(p->toPost, nullptr));
        const std::weak_ptr<PostedCall> call = p->call;
        QFuture<QVariant> future = p->future;
        LuaWait::block(L, future, [call, future]() mutable {
            if (std::shared_ptr<PostedCall> c = call.lock())
                c->cancel();
            else
                future.cancel();
        }, p->children);
    }
    return finishAnswer(L, idx);
}

void pushConnection(lua_State *L, const std::shared_ptr<SignalHandler> &handler);
void startWaitTimer(Pending *p);

int finishAnswer(lua_State *L, int idx)
{
    auto *p = static_cast<Pending *>(lua_touserdata(L, idx));
    QVariant answer;
    try {
        answer = LuaWait::result(p->future, p->what()); // the call's own error, with its kind
    } catch (...) {
        if (p->then == Then::Connected)
            ObjectLib::releaseHandler(L, p->connectionId);
        throw;
    }
    switch (p->then) {
    case Then::Push:
        pushValue(L, answer, QStringLiteral("result"));
        return 1;
    case Then::PushPath:
        pushValue(L, answer, p->member->path);
        return 1;
    case Then::Nothing:
        return 0;
    case Then::Connected:
        if (LibState *st = state(L); st && st->link)
            st->link->add(p->handler);
        pushConnection(L, p->handler);
        return 1;
    case Then::WaitAttached:
        // Attached in the object's thread: now the emission itself.
        p->future = std::static_pointer_cast<SignalWaiter>(p->handler)->future();
        p->then = Then::WaitFired;
        startWaitTimer(p);
        return waitAnswer(L, idx);
    case Then::WaitFired: {
        p->handler->detach();
        if (!answer.isValid()) { // timed out
            lua_pushboolean(L, false);
            return 1;
        }
        const QVariantList args = answer.toList();
        luaL_checkstack(L, int(args.size()) + 1, "too many signal arguments");
        lua_pushboolean(L, true);
        for (qsizetype i = 0; i < args.size(); ++i)
            pushValue(L, Arguments::forLua(args.at(i)), p->member->path);
        return int(args.size()) + 1;
    }
    case Then::AsyncReturned:
        // An async context function gave its future: wait for that one too.
        return IsleLib::await(L, answer.value<QFuture<QVariant>>());
    }
    return 0;
}

// Posts call (when there is one) and waits for the answer as `pending` says.
int awaitAnswer(lua_State *L, Pending pending, std::shared_ptr<PostedCall> call)
{
    luaL_checkstack(L, 4, "QIsle objects");
    if (call) {
        // Requests the call submits to this isle are the script's children:
        // where the script yields, the queue starts them ahead of the others;
        // where it blocks, the Lua thread runs them while it waits.
        const std::shared_ptr<ThreadMailbox> mailbox = ThreadMailbox::current();
        call->setWaiter(mailbox);
        if (Scheduler &scheduler = Scheduler::from(L); scheduler.canWait(L)) {
            // The answer is finished on this thread, whose event loop watches
            // it while the script yields.
            call->setFinisher(&scheduler);
            call->setParent(queueOf(L), Worker::from(L)->currentFiberSerial());
        } else {
            pending.children = std::make_shared<ChildInbox>(queueOf(L), mailbox);
            call->setChildInbox(pending.children);
        }
        pending.future = call->future();
        pending.call = call;
        pending.toPost = std::move(call); // posted by waitAnswer, once the wait is set up
    }
    auto *p = new (lua_newuserdatauv(L, sizeof(Pending), 0)) Pending(std::move(pending));
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PendingMetaKey);
    lua_setmetatable(L, -2);
    if (p->then == Then::WaitFired)
        startWaitTimer(p);
    return waitAnswer(L, lua_gettop(L));
}

// Runs body in the object's thread while the script waits.
int remote(lua_State *L, ObjectHandle *h, PostedCall::Body body, Then then, const MemberInfo *member,
           Pending pending = {})
{
    const QString what = member ? member->path : QStringLiteral("QObject");
    auto call = std::make_shared<PostedCall>(h->object, h->thread, std::move(body), what + QStringLiteral(": the object"));
    pending.then = then;
    pending.member = member;
    return awaitAnswer(L, std::move(pending), std::move(call));
}

// ---------------------------------------------------------------------------
// Members

QVariant readProperty(QObject *o, const MemberInfo &m)
{
    const QMetaProperty p = o->metaObject()->property(m.propertyIndex);
    return Arguments::forLua(p.read(o));
}

void writeProperty(QObject *o, const MemberInfo &m, const QVariant &value)
{
    const QMetaProperty p = o->metaObject()->property(m.propertyIndex);
    if (!p.write(o, Arguments::materialize(value, m.type, m.path)))
        fail(QStringLiteral("%1: the property did not accept the value").arg(m.path));
}

void pushMembers(lua_State *L, const ClassInfo *cls)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ClassesKey);
    if (lua_rawgetp(L, -1, cls) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, -3, cls);
    }
    lua_remove(L, -2);
}

int callMethod(lua_State *L);

// The Lua value that stands for a member in the class's members table
// (`members` at that index, key at keyIdx); pushes it and caches it there.
// nullptr member: unknown name.
const MemberInfo *resolve(lua_State *L, const ClassInfo *cls, int keyIdx, int members)
{
    if (lua_type(L, keyIdx) != LUA_TSTRING)
        return nullptr;
    size_t length = 0;
    const char *key = lua_tolstring(L, keyIdx, &length);
    const MemberInfo *m = cls->member(QByteArray::fromRawData(key, qsizetype(length)));
    if (!m)
        return nullptr;
    switch (m->kind) {
    case MemberInfo::Kind::Property:
    case MemberInfo::Kind::Signal:
        lua_pushlightuserdata(L, const_cast<MemberInfo *>(m));
        break;
    case MemberInfo::Kind::Methods:
        lua_rawgetp(L, LUA_REGISTRYINDEX, &ObjectMetaKey);
        lua_pushlightuserdata(L, const_cast<MemberInfo *>(m));
        lua_pushlightuserdata(L, const_cast<ClassInfo *>(cls));
        lua_pushcclosure(L, protect<callMethod>, 3);
        break;
    case MemberInfo::Kind::EnumKey:
        lua_pushinteger(L, lua_Integer(m->value));
        break;
    case MemberInfo::Kind::Enum:
        lua_createtable(L, 0, int(m->enumInfo->keys.size()));
        for (const auto &key : m->enumInfo->keys) {
            lua_pushinteger(L, lua_Integer(key.second));
            lua_setfield(L, -2, key.first.constData());
        }
        break;
    }
    lua_pushvalue(L, keyIdx);
    lua_pushvalue(L, -2);
    lua_rawset(L, members);
    return m;
}

QString unknownMember(lua_State *L, const ClassInfo *cls, int keyIdx)
{
    const QString key = lua_type(L, keyIdx) == LUA_TSTRING ? QString::fromUtf8(lua_tostring(L, keyIdx))
                                                            : QString::fromLatin1(luaL_typename(L, keyIdx));
    return QStringLiteral("%1 has no property, method or signal '%2'")
            .arg(QString::fromLatin1(cls->className()), key);
}

void pushSignal(lua_State *L, int objectIdx, const MemberInfo *m, const ClassInfo *cls)
{
    auto *s = static_cast<SignalHandle *>(lua_newuserdatauv(L, sizeof(SignalHandle), 1));
    s->member = m;
    s->cls = cls;
    lua_pushvalue(L, objectIdx);
    lua_setiuservalue(L, -2, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SignalMetaKey);
    lua_setmetatable(L, -2);
}

// The hot path: a property of a plain type, on an object of the Lua thread,
// read straight into a local (no QMetaProperty, no QVariant). False: take
// the general path.
template <typename T>
T readFast(QObject *o, int index)
{
    T value{};
    int status = -1;
    void *argv[] = {&value, nullptr, &status};
    QMetaObject::metacall(o, QMetaObject::ReadProperty, index, argv);
    return value;
}

bool pushFast(lua_State *L, ObjectHandle *h, const MemberInfo *m)
{
    if (m->fast == MemberInfo::Fast::None)
        return false;
    static thread_local QThread *const self = QThread::currentThread();
    QObject *o = h->object.data();
    if (!o || h->thread != self || o->thread() != self)
        return false;
    switch (m->fast) {
    case MemberInfo::Fast::Int: lua_pushinteger(L, readFast<int>(o, m->propertyIndex)); return true;
    case MemberInfo::Fast::UInt: lua_pushinteger(L, readFast<uint>(o, m->propertyIndex)); return true;
    case MemberInfo::Fast::LongLong: lua_pushinteger(L, readFast<qlonglong>(o, m->propertyIndex)); return true;
    case MemberInfo::Fast::Bool: lua_pushboolean(L, readFast<bool>(o, m->propertyIndex)); return true;
    case MemberInfo::Fast::Double: lua_pushnumber(L, readFast<double>(o, m->propertyIndex)); return true;
    case MemberInfo::Fast::Float: lua_pushnumber(L, lua_Number(readFast<float>(o, m->propertyIndex))); return true;
    case MemberInfo::Fast::None: break;
    }
    return false;
}

int objectIndex(lua_State *L)
{
    auto *h = static_cast<ObjectHandle *>(lua_touserdata(L, 1));
    lua_getiuservalue(L, 1, 1); // 3: members
    lua_pushvalue(L, 2);
    int type = lua_rawget(L, 3);
    const MemberInfo *m = nullptr;
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        m = resolve(L, h->cls, 2, 3);
        if (!m)
            fail(unknownMember(L, h->cls, 2));
        type = lua_type(L, -1);
    }
    if (type != LUA_TLIGHTUSERDATA)
        return 1; // a method, an enum key or an enum's table
    m = static_cast<const MemberInfo *>(lua_touserdata(L, -1));
    if (pushFast(L, h, m))
        return 1;
    if (m->kind == MemberInfo::Kind::Signal) {
        pushSignal(L, 1, m, h->cls);
        return 1;
    }
    if (QObject *o = local(h, m->path)) {
        pushValue(L, readProperty(o, *m), m->path);
        return 1;
    }
    return remote(L, h, [m](QObject *o) { return ObjectValues::weaken(readProperty(o, *m)); }, Then::PushPath, m);
}

int objectNewIndex(lua_State *L)
{
    auto *h = static_cast<ObjectHandle *>(lua_touserdata(L, 1));
    lua_getiuservalue(L, 1, 1); // 4: members
    lua_pushvalue(L, 2);
    int type = lua_rawget(L, 4);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        if (!resolve(L, h->cls, 2, 4))
            fail(QStringLiteral("%1 has no property '%2'")
                         .arg(QString::fromLatin1(h->cls->className()),
                              lua_type(L, 2) == LUA_TSTRING ? QString::fromUtf8(lua_tostring(L, 2))
                                                            : QString::fromLatin1(luaL_typename(L, 2))));
        type = lua_type(L, -1);
    }
    const auto *m = type == LUA_TLIGHTUSERDATA ? static_cast<const MemberInfo *>(lua_touserdata(L, -1)) : nullptr;
    if (!m || m->kind != MemberInfo::Kind::Property) {
        const QString key = QString::fromUtf8(lua_tostring(L, 2));
        fail(QStringLiteral("%1.%2 is not a property: it cannot be assigned")
                     .arg(QString::fromLatin1(h->cls->className()), key));
    }
    if (!m->writable)
        fail(QStringLiteral("%1 is read-only").arg(m->path));
    QVariant value;
    if (Arguments::convert(L, 3, m->type, &value) == Arguments::Match::None)
        fail(QStringLiteral("%1: cannot assign a %2 to a property of type %3")
                     .arg(m->path, Arguments::describe(L, 3), QString::fromLatin1(m->type.name())));
    if (QObject *o = local(h, m->path)) {
        writeProperty(o, *m, value);
        return 0;
    }
    return remote(L, h, [m, value](QObject *o) {
        writeProperty(o, *m, value);
        return QVariant();
    }, Then::Nothing, m);
}

// The hot path of a method call: one overload of plain types, an object of
// the Lua thread, arguments that fit exactly. False: take the general path
// (which also gives the errors).
bool callFast(lua_State *L, ObjectHandle *h, const MemberInfo *m, int *results)
{
    if (m->methods.size() != 1)
        return false;
    const MethodInfo &method = m->methods.front();
    const int count = lua_gettop(L) - 1;
    if (!method.fast || count != method.params.size())
        return false;
    static thread_local QThread *const self = QThread::currentThread();
    QObject *o = h->object.data();
    if (!o || h->thread != self || o->thread() != self)
        return false;
    union Slot
    {
        int i;
        uint u;
        qlonglong ll;
        double d;
        bool b;
    };
    Slot slots[7];
    void *argv[7];
    for (int a = 0; a < count; ++a) {
        const int idx = a + 2;
        Slot &slot = slots[a + 1];
        argv[a + 1] = &slot;
        switch (method.params.at(a).id()) {
        case QMetaType::Int: {
            if (!lua_isinteger(L, idx))
                return false;
            const lua_Integer n = lua_tointeger(L, idx);
            if (n < std::numeric_limits<int>::min() || n > std::numeric_limits<int>::max())
                return false;
            slot.i = int(n);
            break;
        }
        case QMetaType::UInt: {
            if (!lua_isinteger(L, idx))
                return false;
            const lua_Integer n = lua_tointeger(L, idx);
            if (n < 0 || n > lua_Integer(std::numeric_limits<uint>::max()))
                return false;
            slot.u = uint(n);
            break;
        }
        case QMetaType::LongLong:
            if (!lua_isinteger(L, idx))
                return false;
            slot.ll = qlonglong(lua_tointeger(L, idx));
            break;
        case QMetaType::Double:
            if (lua_type(L, idx) != LUA_TNUMBER || lua_isinteger(L, idx))
                return false; // an integer: the general path checks it converts exactly
            slot.d = double(lua_tonumber(L, idx));
            break;
        case QMetaType::Bool:
            if (lua_type(L, idx) != LUA_TBOOLEAN)
                return false;
            slot.b = lua_toboolean(L, idx);
            break;
        default:
            return false;
        }
    }
    const int returnType = method.returnType.isValid() ? method.returnType.id() : QMetaType::Void;
    slots[0].ll = 0;
    argv[0] = returnType == QMetaType::Void ? nullptr : &slots[0];
    QMetaObject::metacall(o, QMetaObject::InvokeMetaMethod, method.index, argv);
    *results = 1;
    switch (returnType) {
    case QMetaType::Int: lua_pushinteger(L, slots[0].i); break;
    case QMetaType::UInt: lua_pushinteger(L, slots[0].u); break;
    case QMetaType::LongLong: lua_pushinteger(L, slots[0].ll); break;
    case QMetaType::Double: lua_pushnumber(L, slots[0].d); break;
    case QMetaType::Bool: lua_pushboolean(L, slots[0].b); break;
    default: *results = 0; break;
    }
    return true;
}

int callMethod(lua_State *L)
{
    const auto *m = static_cast<const MemberInfo *>(lua_touserdata(L, lua_upvalueindex(2)));
    const auto *cls = static_cast<const ClassInfo *>(lua_touserdata(L, lua_upvalueindex(3)));
    ObjectHandle *h = nullptr;
    if (lua_type(L, 1) == LUA_TUSERDATA && lua_getmetatable(L, 1)) {
        if (lua_rawequal(L, -1, lua_upvalueindex(1)))
            h = static_cast<ObjectHandle *>(lua_touserdata(L, 1));
        lua_pop(L, 1);
    }
    if (!h || (h->cls != cls && !h->cls->inherits(cls->metaClassName())))
        fail(QStringLiteral("%1: call it on a %2, as obj:%3(...)")
                     .arg(m->path, QString::fromLatin1(cls->className()), QString::fromLatin1(m->name)));
    if (int results = 0; callFast(L, h, m, &results))
        return results;
    const Arguments::Chosen chosen = Arguments::choose(L, 2, lua_gettop(L) - 1, *m, cls->className());
    const MethodInfo *method = chosen.method;
    const bool returnsNothing = !method->returnType.isValid() || method->returnType.id() == QMetaType::Void;
    if (QObject *o = local(h, m->path)) {
        const QVariant result = Arguments::forLua(Arguments::invoke(o, *method, chosen.args, m->path));
        if (returnsNothing)
            return 0;
        pushValue(L, result, m->path);
        return 1;
    }
    return remote(L, h, [method, args = chosen.args, path = m->path](QObject *o) {
        return ObjectValues::weaken(Arguments::forLua(Arguments::invoke(o, *method, args, path)));
    }, returnsNothing ? Then::Nothing : Then::PushPath, m);
}

int objectEq(lua_State *L)
{
    ObjectHandle *a = toHandle(L, 1);
    ObjectHandle *b = toHandle(L, 2);
    lua_pushboolean(L, a && b && a->address == b->address);
    return 1;
}

int objectToString(lua_State *L)
{
    auto *h = static_cast<ObjectHandle *>(lua_touserdata(L, 1));
    const QString className = QString::fromLatin1(h->cls ? h->cls->className() : "QObject");
    const QString address = QStringLiteral("0x%1").arg(quintptr(h->address), 0, 16);
    const auto format = [className, address](const QString &name) {
        return name.isEmpty() ? QStringLiteral("%1(%2)").arg(className, address)
                              : QStringLiteral("%1(%2, \"%3\")").arg(className, address, name);
    };
    QString text;
    if (!h->object) {
        text = QStringLiteral("%1(%2, destroyed)").arg(className, address);
    } else if (QObject *o = local(h, className)) {
        text = format(o->objectName());
    } else {
        return remote(L, h, [format](QObject *o) { return QVariant(format(o->objectName())); }, Then::Push, nullptr);
    }
    const QByteArray utf8 = text.toUtf8();
    lua_pushlstring(L, utf8.constData(), size_t(utf8.size()));
    return 1;
}

// ---------------------------------------------------------------------------
// Signals

SignalHandle *checkSignal(lua_State *L, ObjectHandle **object)
{
    auto *s = static_cast<SignalHandle *>(luaL_checkudata(L, 1, "QIsle.Signal"));
    lua_getiuservalue(L, 1, 1);
    *object = toHandle(L, -1);
    lua_pop(L, 1);
    if (!*object)
        fail(QStringLiteral("a signal without its object"));
    return s;
}

// The body that attaches a listener to the signal, in the object's thread.
PostedCall::Body attachBody(const SignalHandle *s, const std::shared_ptr<SignalHandler> &handler)
{
    const MethodInfo *signal = &s->member->methods.front();
    return [signal, handler](QObject *o) {
        SignalHub::of(o, signal->index, signal->params)->attach(handler);
        return QVariant();
    };
}

void pushConnection(lua_State *L, const std::shared_ptr<SignalHandler> &handler)
{
    new (lua_newuserdatauv(L, sizeof(Connection), 0))
            Connection{std::static_pointer_cast<LuaSignalHandler>(handler)};
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ConnectionMetaKey);
    lua_setmetatable(L, -2);
}

int signalConnect(lua_State *L)
{
    ObjectHandle *h = nullptr;
    const SignalHandle *s = checkSignal(L, &h);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    LibState *st = state(L);
    if (!st || !st->link)
        fail(QStringLiteral("%1: connections need a QIsle").arg(s->member->path));
    const lua_Integer id = ++st->nextId;
    if (id > std::numeric_limits<int>::max())
        fail(QStringLiteral("too many connections"));
    lua_rawgetp(L, LUA_REGISTRYINDEX, &HandlersKey);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, id);
    lua_pop(L, 1);
    auto handler = std::make_shared<LuaSignalHandler>(st->link, int(id));
    QObject *o = nullptr;
    try {
        o = local(h, s->member->path);
    } catch (...) {
        ObjectLib::releaseHandler(L, int(id));
        throw;
    }
    if (!o) {
        Pending pending;
        pending.handler = handler;
        pending.connectionId = int(id);
        return remote(L, h, attachBody(s, handler), Then::Connected, s->member, std::move(pending));
    }
    attachBody(s, handler)(o);
    st->link->add(handler);
    pushConnection(L, handler);
    return 1;
}

void startWaitTimer(Pending *p)
{
    if (p->timeoutMs < 0 || p->future.isFinished())
        return;
    // On the Lua thread, whose event loop runs while the script waits.
    const auto ms = std::chrono::milliseconds(qint64(std::min<lua_Number>(p->timeoutMs, 1e12)));
    QTimer::singleShot(ms, Qt::PreciseTimer, [waiter = std::weak_ptr<SignalHandler>(p->handler)] {
        if (std::shared_ptr<SignalHandler> w = waiter.lock())
            static_cast<SignalWaiter *>(w.get())->timeOut();
    });
}

// obj.sig:wait([timeoutMs]): a wait like any other (DESIGN, Async): where the
// script cannot yield it would wait for this same thread, so it refuses.
int signalWait(lua_State *L)
{
    ObjectHandle *h = nullptr;
    const SignalHandle *s = checkSignal(L, &h);
    lua_Number timeout = -1;
    if (!lua_isnoneornil(L, 2))
        timeout = qMax<lua_Number>(0, luaL_checknumber(L, 2));
    Scheduler &scheduler = Scheduler::from(L);
    if (!scheduler.canWait(L))
        scheduler.raiseCannotWait(L, "a signal's wait()");
    auto waiter = std::make_shared<SignalWaiter>();
    waiter->setFinisher(&scheduler);
    Pending pending;
    pending.handler = waiter;
    pending.timeoutMs = timeout;
    pending.waiting = true;
    if (QObject *o = local(h, s->member->path)) {
        attachBody(s, waiter)(o);
        pending.then = Then::WaitFired;
        pending.member = s->member;
        pending.future = waiter->future();
        return awaitAnswer(L, std::move(pending), nullptr);
    }
    return remote(L, h, attachBody(s, waiter), Then::WaitAttached, s->member, std::move(pending));
}

int signalEmit(lua_State *L)
{
    ObjectHandle *h = nullptr;
    const SignalHandle *s = checkSignal(L, &h);
    const Arguments::Chosen chosen = Arguments::choose(L, 2, lua_gettop(L) - 1, *s->member, s->cls->className());
    const MethodInfo *method = chosen.method;
    if (QObject *o = local(h, s->member->path)) {
        Arguments::invoke(o, *method, chosen.args, s->member->path);
        return 0;
    }
    return remote(L, h, [method, args = chosen.args, path = s->member->path](QObject *o) {
        Arguments::invoke(o, *method, args, path);
        return QVariant();
    }, Then::Nothing, s->member);
}

int signalToString(lua_State *L)
{
    const auto *s = static_cast<SignalHandle *>(lua_touserdata(L, 1));
    const QByteArray text = "signal " + s->cls->className() + "." + s->member->methods.front().signature;
    lua_pushlstring(L, text.constData(), size_t(text.size()));
    return 1;
}

int connectionDisconnect(lua_State *L)
{
    auto *c = static_cast<Connection *>(luaL_checkudata(L, 1, "QIsle.Connection"));
    if (c->handler) {
        c->handler->detach();
        ObjectLib::releaseHandler(L, c->handler->id());
    }
    return 0;
}

int connectionConnected(lua_State *L)
{
    auto *c = static_cast<Connection *>(luaL_checkudata(L, 1, "QIsle.Connection"));
    lua_pushboolean(L, c->handler && c->handler->isAttached());
    return 1;
}

// ---------------------------------------------------------------------------
// Context functions

// fn, called: a C++ exception is a Callback error (a stop that reached a
// nested blocking call stays a stop).
template <typename R, typename F>
R callLocal(lua_State *L, F fn)
{
    try {
        return fn();
    } catch (const QIsleError &e) {
        StopControl &stop = StopControl::from(L);
        if (stop.stopping())
            stop.raiseStop(L);
        stop.checkpoint(L);
        throw QIsleError(QIsleError::Kind::Callback, e.message());
    }
}

int callContext(lua_State *L)
{
    auto *cf = static_cast<ContextFunction *>(lua_touserdata(L, lua_upvalueindex(1)));
    const int n = lua_gettop(L);
    QVariantList args;
    args.reserve(n);
    for (int i = 1; i <= n; ++i) {
        ObjectRef ref;
        if (ObjectLib::toRef(L, i, &ref)) {
            args.append(QVariant::fromValue(ref));
            continue;
        }
        try {
            args.append(ObjectValues::weaken(Value::read(L, i, Worker::argumentPath(i))));
        } catch (const QIsleError &e) {
            throw QIsleError(QIsleError::Kind::Conversion, e.message());
        }
    }
    const QString what = QStringLiteral("the context object of '%1'").arg(cf->name);
    QObject *context = cf->context.data();
    if (!context)
        fail(QStringLiteral("%1 was destroyed").arg(what));
    QThread *self = QThread::currentThread();
    if (cf->thread == self && context->thread() == self) {
        // The context lives in the Lua thread: a plain call.
        if (cf->asyncFn) {
            const auto fn = cf->asyncFn;
            return IsleLib::await(L, callLocal<QFuture<QVariant>>(L, [&] {
                return (*fn)(ObjectValues::strengthen(args));
            }));
        }
        const QVariant result = callLocal<QVariant>(L, [&] { return (*cf->fn)(ObjectValues::strengthen(args)); });
        pushValue(L, result, QStringLiteral("result"));
        return 1;
    }
    if (cf->thread == self)
        cf->thread = context->thread(); // moved away; only this thread could
    PostedCall::Body body;
    if (cf->asyncFn) {
        body = [fn = cf->asyncFn, args](QObject *) {
            try {
                return QVariant::fromValue((*fn)(ObjectValues::strengthen(args)));
            } catch (const QIsleError &e) {
                throw QIsleError(QIsleError::Kind::Callback, e.message());
            }
        };
    } else {
        body = [fn = cf->fn, args](QObject *) {
            try {
                return ObjectValues::weaken((*fn)(ObjectValues::strengthen(args)));
            } catch (const QIsleError &e) {
                throw QIsleError(QIsleError::Kind::Callback, e.message());
            }
        };
    }
    Pending pending;
    pending.then = cf->asyncFn ? Then::AsyncReturned : Then::Push;
    return awaitAnswer(L, std::move(pending), std::make_shared<PostedCall>(cf->context, cf->thread, std::move(body), what));
}

// ---------------------------------------------------------------------------

void ensure(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ObjectMetaKey) == LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    StackGuard guard(L);
    luaL_checkstack(L, 8, "QIsle objects");

    lua_newtable(L); // one Lua value per object, while referenced
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ObjectsKey);

    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ClassesKey);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &HandlersKey);

    lua_createtable(L, 0, 8);
    lua_pushcfunction(L, protect<objectIndex>);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, protect<objectNewIndex>);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, objectEq);
    lua_setfield(L, -2, "__eq");
    lua_pushcfunction(L, protect<objectToString>);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, destroy<ObjectHandle>);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "QObject");
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ObjectMetaKey);

    luaL_newmetatable(L, "QIsle.Signal");
    static const luaL_Reg signalMethods[] = {
        {"connect", protect<signalConnect>},
        {"wait", protect<signalWait>},
        {"emit", protect<signalEmit>},
        {nullptr, nullptr},
    };
    luaL_newlib(L, signalMethods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, signalToString);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SignalMetaKey);

    luaL_newmetatable(L, "QIsle.Connection");
    static const luaL_Reg connectionMethods[] = {
        {"disconnect", protect<connectionDisconnect>},
        {"connected", connectionConnected},
        {nullptr, nullptr},
    };
    luaL_newlib(L, connectionMethods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, destroy<Connection>);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ConnectionMetaKey);

    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, destroy<Pending>);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PendingMetaKey);

    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, destroy<ContextFunction>);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ContextMetaKey);
}

// Sets the global `name` (dotted: tables on the way) to the value on top; pops it.
void setDotted(lua_State *L, const QString &name)
{
    const QStringList parts = name.split(QLatin1Char('.'));
    lua_pushglobaltable(L);
    for (qsizetype i = 0; i + 1 < parts.size(); ++i) {
        const QByteArray key = parts.at(i).toUtf8();
        if (lua_getfield(L, -1, key.constData()) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, -3, key.constData());
        }
        lua_remove(L, -2);
    }
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, parts.constLast().toUtf8().constData());
    lua_pop(L, 2);
}

} // namespace

namespace ObjectLib {

void open(lua_State *L, std::shared_ptr<IsleLink> link)
{
    // The objects' tables and metatables are made by ensure() when the first
    // object, context function or handler needs them (every entry point
    // calls it), not here: a fresh VM stays lighter and spawns faster
    // (issue 18, rows 7e/7f). Nothing a script sees changes.
    StackGuard guard(L);
    auto *s = new (lua_newuserdatauv(L, sizeof(LibState), 0)) LibState;
    s->link = std::move(link);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, destroy<LibState>);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &StateKey);
}

void push(lua_State *L, const ObjectRef &ref)
{
    if (!ref.address) {
        lua_pushnil(L);
        return;
    }
    luaL_checkstack(L, 6, "QIsle objects");
    ensure(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ObjectsKey);
    if (lua_rawgetp(L, -1, ref.address) == LUA_TUSERDATA) {
        auto *h = static_cast<ObjectHandle *>(lua_touserdata(L, -1));
        if (h->object && h->object.data() == ref.address) {
            lua_remove(L, -2);
            return;
        }
    }
    lua_pop(L, 1);
    auto *h = new (lua_newuserdatauv(L, sizeof(ObjectHandle), 1))
            ObjectHandle{ref.object, ref.address, ref.thread, ref.cls};
    pushMembers(L, h->cls);
    lua_setiuservalue(L, -2, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ObjectMetaKey);
    lua_setmetatable(L, -2);
    if (h->object) { // a destroyed one is never the value of a new object at that address
        lua_pushvalue(L, -1);
        lua_rawsetp(L, -3, ref.address);
    }
    lua_remove(L, -2);
}

void push(lua_State *L, QObject *object)
{
    if (!object) {
        lua_pushnil(L);
        return;
    }
    // Known already: no new weak reference needed.
    luaL_checkstack(L, 4, "QIsle objects");
    ensure(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ObjectsKey);
    if (lua_rawgetp(L, -1, object) == LUA_TUSERDATA) {
        auto *h = static_cast<ObjectHandle *>(lua_touserdata(L, -1));
        if (h->object.data() == object) {
            lua_remove(L, -2);
            return;
        }
    }
    lua_pop(L, 2);
    push(L, ObjectRef::make(object));
}

bool toRef(lua_State *L, int idx, ObjectRef *ref)
{
    if (lua_type(L, idx) != LUA_TUSERDATA)
        return false;
    luaL_checkstack(L, 2, "QIsle objects");
    ObjectHandle *h = toHandle(L, idx);
    if (!h)
        return false;
    ref->object = h->object;
    ref->address = h->address;
    ref->thread = h->thread;
    ref->cls = h->cls;
    return true;
}

void expose(lua_State *L, const QString &name, const ObjectRef &ref)
{
    StackGuard guard(L);
    push(L, ref);
    setDotted(L, name);
}

void registerContextFunction(lua_State *L, const QString &name, const ObjectRef &context, QIsle::HostFunction fn)
{
    StackGuard guard(L);
    ensure(L);
    new (lua_newuserdatauv(L, sizeof(ContextFunction), 0)) ContextFunction{
            context.object, context.thread, std::make_shared<const QIsle::HostFunction>(std::move(fn)), {}, name};
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ContextMetaKey);
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, protect<callContext>, 1);
    setDotted(L, name);
}

void registerAsyncContextFunction(lua_State *L, const QString &name, const ObjectRef &context,
                                  QIsle::AsyncHostFunction fn)
{
    StackGuard guard(L);
    ensure(L);
    new (lua_newuserdatauv(L, sizeof(ContextFunction), 0)) ContextFunction{
            context.object, context.thread, {}, std::make_shared<const QIsle::AsyncHostFunction>(std::move(fn)), name};
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ContextMetaKey);
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, protect<callContext>, 1);
    setDotted(L, name);
}

void runHandler(lua_State *L, int id, const QVariantList &args)
{
    ensure(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &HandlersKey);
    if (lua_rawgeti(L, -1, id) != LUA_TFUNCTION) {
        lua_pop(L, 2); // disconnected meanwhile
        return;
    }
    lua_remove(L, -2);
    luaL_checkstack(L, int(args.size()) + LUA_MINSTACK, "too many signal arguments");
    for (qsizetype i = 0; i < args.size(); ++i)
        Value::push(L, Arguments::forLua(args.at(i)), Worker::argumentPath(int(i) + 1));
    lua_call(L, int(args.size()), 0);
}

void releaseHandler(lua_State *L, int id)
{
    ensure(L);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &HandlersKey);
    lua_pushnil(L);
    lua_rawseti(L, -2, id);
    lua_pop(L, 1);
}

} // namespace ObjectLib
