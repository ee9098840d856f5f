// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
#include "async/channels_p.h"

#include "async/scheduler_p.h"
#include "luautil/stackguard_p.h"

#include <QtCore/QList>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr char ChannelType[] = "isle.channel";
constexpr int BufferSlot = 1;  // user value: {[head .. head + count - 1] = buffered values}
constexpr int MailboxSlot = 2; // user value: {[slot] = a value in flight (a waiting sender's, or delivered)}

// Fibers waiting on a channel, oldest first. A vector with a moving head,
// not a std::deque: an empty one owns no memory, so a channel that never had
// a waiter needs no destructor -- one made by a __gc finalizer while the VM
// closes is never finalized itself (Lua does not finalize objects made
// then), and must not leak.
template<typename Waiter>
class WaiterQueue
{
public:
    bool empty() const { return m_head == m_items.size(); }
    const Waiter &front() const { return m_items[m_head]; }
    void push_back(const Waiter &w) { m_items.push_back(w); }
    void pop_front()
    {
        if (++m_head == m_items.size()) {
            m_items.clear();
            m_head = 0;
        } else if (m_head >= 32 && m_head * 2 >= m_items.size()) {
            m_items.erase(m_items.begin(), m_items.begin() + std::ptrdiff_t(m_head));
            m_head = 0;
        }
    }
    template<typename Pred>
    void removeIf(Pred pred)
    {
        m_items.erase(std::remove_if(m_items.begin() + std::ptrdiff_t(m_head), m_items.end(), pred), m_items.end());
        if (empty()) {
            m_items.clear();
            m_head = 0;
        }
    }

private:
    std::vector<Waiter> m_items;
    std::size_t m_head = 0;
};

// A channel of Lua values. Fibers of any request may wait on it; a waiter's
// stack holds the channel (its argument), so it outlives every wait on it.
struct Channel
{
    struct Waiter
    {
        Fiber *fiber;
        lua_Integer slot;
        int index; // a select's position of this channel (0: recv or send)
    };
    lua_Integer capacity = 0;
    lua_Integer head = 1;
    lua_Integer count = 0;
    lua_Integer nextSlot = 1;
    bool closed = false;
    WaiterQueue<Waiter> senders;   // waiting in send; their values wait in the mailbox
    WaiterQueue<Waiter> receivers; // waiting in recv or isle.select

    void forget(Fiber *f)
    {
        auto gone = [f](const Waiter &w) { return w.fiber == f; };
        senders.removeIf(gone);
        receivers.removeIf(gone);
    }
};

Channel *checkChannel(lua_State *L, int index = 1)
{
    return static_cast<Channel *>(luaL_checkudata(L, index, ChannelType));
}

// t[key] = the value at `value` (ch: the channel's stack index).
void store(lua_State *L, int ch, int slot, lua_Integer key, int value)
{
    value = lua_absindex(L, value);
    lua_getiuservalue(L, ch, slot);
    lua_pushvalue(L, value);
    lua_rawseti(L, -2, key);
    lua_pop(L, 1);
}

// Pushes t[key] and clears it.
void take(lua_State *L, int ch, int slot, lua_Integer key)
{
    lua_getiuservalue(L, ch, slot);
    lua_rawgeti(L, -1, key);
    lua_pushnil(L);
    lua_rawseti(L, -3, key);
    lua_remove(L, -2);
}

void clear(lua_State *L, int ch, int slot, lua_Integer key)
{
    lua_getiuservalue(L, ch, slot);
    lua_pushnil(L);
    lua_rawseti(L, -2, key);
    lua_pop(L, 1);
}

// The waiter leaves every channel it waits on (a select waits on several).
void leaveAll(Fiber *f)
{
    if (auto withdraw = std::move(f->wait.withdraw)) {
        f->wait.withdraw = nullptr;
        withdraw();
    }
}

// Hands the value at `value` to the first waiting receiver.
void deliver(lua_State *L, int ch, Channel *c, int value)
{
    const Channel::Waiter w = c->receivers.front();
    store(L, ch, MailboxSlot, w.slot, value); // may raise (memory): nothing changed yet
    c->receivers.pop_front();
    leaveAll(w.fiber);
    w.fiber->wait.index = w.index;
    w.fiber->wait.ok = true;
    w.fiber->wait.slot = w.slot;
    Scheduler::from(L).wake(w.fiber);
}

// Pushes the next value a receiver gets now, if any: the oldest buffered one
// (a waiting sender's value takes its place), else a waiting sender's.
bool takeNow(lua_State *L, int ch, Channel *c)
{
    if (c->count > 0) {
        take(L, ch, BufferSlot, c->head);
        ++c->head;
        --c->count;
        if (!c->senders.empty()) {
            const Channel::Waiter s = c->senders.front();
            take(L, ch, MailboxSlot, s.slot);
            store(L, ch, BufferSlot, c->head + c->count, -1);
            lua_pop(L, 1);
            ++c->count;
            c->senders.pop_front();
            Scheduler::from(L).wake(s.fiber);
        }
        return true;
    }
    if (!c->senders.empty()) {
        const Channel::Waiter s = c->senders.front();
        c->senders.pop_front();
        take(L, ch, MailboxSlot, s.slot);
        Scheduler::from(L).wake(s.fiber);
        return true;
    }
    return false;
}

// Sends the value at `value` without waiting; false when it would wait.
bool sendNow(lua_State *L, int ch, Channel *c, int value)
{
    if (!c->receivers.empty()) {
        deliver(L, ch, c, value);
        return true;
    }
    if (c->count < c->capacity) {
        store(L, ch, BufferSlot, c->head + c->count, value);
        ++c->count;
        return true;
    }
    return false;
}

int destroyChannel(lua_State *L)
{
    static_cast<Channel *>(luaL_checkudata(L, 1, ChannelType))->~Channel();
    return 0;
}

int finishSend(lua_State *L, int, lua_KContext)
{
    Scheduler &scheduler = Scheduler::from(L);
    const WaitState &wait = scheduler.running()->wait;
    if (wait.outcome == WaitState::Outcome::Stop || wait.outcome == WaitState::Outcome::Error)
        clear(L, 1, MailboxSlot, wait.slot); // the value never left
    const WaitState outcome = scheduler.takeOutcome(L);
    if (outcome.outcome == WaitState::Outcome::Error)
        return luaL_error(L, "%s", outcome.message.toUtf8().constData());
    return 0;
}

// ch:send(v): waits while the channel is full (on a rendezvous channel,
// until a receiver takes it); an error on a closed channel.
int send(lua_State *L)
{
    Channel *c = checkChannel(L);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    if (c->closed)
        return luaL_error(L, "send on a closed channel");
    if (sendNow(L, 1, c, 2))
        return 0;
    Scheduler &scheduler = Scheduler::from(L);
    if (!scheduler.canWait(L))
        scheduler.raiseCannotWait(L, "ch:send()");
    if (scheduler.mustNotWait(L))
        Scheduler::raiseStop(L);
    const lua_Integer slot = c->nextSlot++;
    store(L, 1, MailboxSlot, slot, 2);
    Fiber *me = scheduler.running();
    c->senders.push_back({me, slot, 0});
    scheduler.waitExternal([c, me] { c->forget(me); });
    me->wait.slot = slot;
    return scheduler.yield(L, finishSend, 0);
}

int finishRecv(lua_State *L, int, lua_KContext)
{
    Scheduler &scheduler = Scheduler::from(L);
    const WaitState &wait = scheduler.running()->wait;
    if (wait.outcome == WaitState::Outcome::Stop && wait.ok)
        clear(L, 1, MailboxSlot, wait.slot); // delivered, then stopped: dropped
    const WaitState outcome = scheduler.takeOutcome(L);
    if (outcome.ok) {
        take(L, 1, MailboxSlot, outcome.slot);
        lua_pushboolean(L, 1);
        return 2;
    }
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    return 2;
}

// ch:recv() -> v, true; or nil, false once closed and drained.
int recv(lua_State *L)
{
    Channel *c = checkChannel(L);
    lua_settop(L, 1);
    if (takeNow(L, 1, c)) {
        lua_pushboolean(L, 1);
        return 2;
    }
    if (c->closed) {
        lua_pushnil(L);
        lua_pushboolean(L, 0);
        return 2;
    }
    Scheduler &scheduler = Scheduler::from(L);
    if (!scheduler.canWait(L))
        scheduler.raiseCannotWait(L, "ch:recv()");
    if (scheduler.mustNotWait(L))
        Scheduler::raiseStop(L);
    Fiber *me = scheduler.running();
    c->receivers.push_back({me, c->nextSlot++, 0});
    scheduler.waitExternal([c, me] { c->forget(me); });
    return scheduler.yield(L, finishRecv, 0);
}

// ch:try_send(v) -> whether it was sent (false: full, or closed).
int trySend(lua_State *L)
{
    Channel *c = checkChannel(L);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    lua_pushboolean(L, !c->closed && sendNow(L, 1, c, 2));
    return 1;
}

// ch:try_recv() -> v, true; or nil, false.
int tryRecv(lua_State *L)
{
    Channel *c = checkChannel(L);
    lua_settop(L, 1);
    if (takeNow(L, 1, c)) {
        lua_pushboolean(L, 1);
        return 2;
    }
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    return 2;
}

// ch:close(): waiting receivers get nil, false; waiting senders an error.
// Buffered values stay for receivers. Closing again does nothing.
int close(lua_State *L)
{
    Channel *c = checkChannel(L);
    if (c->closed)
        return 0;
    c->closed = true;
    Scheduler &scheduler = Scheduler::from(L);
    while (!c->receivers.empty()) {
        const Channel::Waiter w = c->receivers.front();
        c->receivers.pop_front();
        leaveAll(w.fiber);
        w.fiber->wait.index = w.index;
        w.fiber->wait.ok = false;
        scheduler.wake(w.fiber);
    }
    while (!c->senders.empty()) {
        const Channel::Waiter s = c->senders.front();
        c->senders.pop_front();
        s.fiber->wait.outcome = WaitState::Outcome::Error;
        s.fiber->wait.message = QStringLiteral("send on a closed channel (closed while waiting)");
        scheduler.wake(s.fiber);
    }
    return 0;
}

// ch:len(): buffered values only.
int len(lua_State *L)
{
    lua_pushinteger(L, checkChannel(L)->count);
    return 1;
}

int cap(lua_State *L)
{
    lua_pushinteger(L, checkChannel(L)->capacity);
    return 1;
}

int finishSelect(lua_State *L, int, lua_KContext)
{
    Scheduler &scheduler = Scheduler::from(L);
    const WaitState &wait = scheduler.running()->wait;
    if (wait.outcome == WaitState::Outcome::Stop && wait.ok && wait.index > 0) {
        lua_rawgeti(L, 1, wait.index);
        clear(L, lua_gettop(L), MailboxSlot, wait.slot);
        lua_pop(L, 1);
    }
    const WaitState outcome = scheduler.takeOutcome(L);
    if (outcome.index == 0) { // the timeout
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, outcome.index);
    if (outcome.ok) {
        lua_rawgeti(L, 1, outcome.index);
        take(L, lua_gettop(L), MailboxSlot, outcome.slot);
        lua_remove(L, -2);
    } else {
        lua_pushnil(L);
    }
    lua_pushboolean(L, outcome.ok);
    return 3;
}

// isle.select(channels [, timeoutMs]) -> index, value, ok for the first
// channel of the list that can receive (ok false: closed and drained); nil
// after the timeout. A timeout <= 0 polls once; none waits as long as it takes.
int select(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const bool bounded = !lua_isnoneornil(L, 2);
    const lua_Number timeout = bounded ? luaL_checknumber(L, 2) : 0;
    lua_settop(L, 2);
    const lua_Integer n = luaL_len(L, 1);
    if (n <= 0)
        return luaL_argerror(L, 1, "empty list of channels");
    if (n > 1000000)
        return luaL_argerror(L, 1, "too many channels");
    QList<Channel *> channels;
    QList<int> indices; // first position of each distinct channel
    for (lua_Integer i = 1; i <= n; ++i) {
        lua_rawgeti(L, 1, i);
        auto *c = static_cast<Channel *>(luaL_testudata(L, -1, ChannelType));
        lua_pop(L, 1);
        if (!c)
            return luaL_error(L, "isle.select: entry %d is not a channel", int(i));
        if (!channels.contains(c)) {
            channels.append(c);
            indices.append(int(i));
        }
    }
    // Poll in list order.
    for (qsizetype k = 0; k < channels.size(); ++k) {
        Channel *c = channels.at(k);
        lua_rawgeti(L, 1, indices.at(k));
        const int ch = lua_gettop(L);
        if (takeNow(L, ch, c)) {
            lua_remove(L, ch);
            lua_pushinteger(L, indices.at(k));
            lua_insert(L, -2);
            lua_pushboolean(L, 1);
            return 3;
        }
        lua_pop(L, 1);
        if (c->closed) {
            lua_pushinteger(L, indices.at(k));
            lua_pushnil(L);
            lua_pushboolean(L, 0);
            return 3;
        }
    }
    if (bounded && !(timeout > 0)) { // also NaN: poll once
        lua_pushnil(L);
        return 1;
    }
    Scheduler &scheduler = Scheduler::from(L);
    if (!scheduler.canWait(L))
        scheduler.raiseCannotWait(L, "isle.select with a timeout");
    if (scheduler.mustNotWait(L))
        Scheduler::raiseStop(L);
    Fiber *me = scheduler.running();
    for (qsizetype k = 0; k < channels.size(); ++k)
        channels.at(k)->receivers.push_back({me, channels.at(k)->nextSlot++, indices.at(k)});
    std::optional<Scheduler::Clock::time_point> until;
    if (bounded && timeout < 1e12) {
        until = Scheduler::Clock::now()
                + std::chrono::microseconds(qint64(std::ceil(timeout * 1000)));
    }
    scheduler.waitExternal([channels, me] {
        for (Channel *c : channels)
            c->forget(me);
    }, until);
    return scheduler.yield(L, finishSelect, 0);
}

// The channels' metatable, made by the first isle.channel: an isle that
// never makes one does not hold it (issue 18, row 7f).
void pushChannelMetatable(lua_State *L)
{
    if (luaL_newmetatable(L, ChannelType)) {
        static const luaL_Reg methods[] = {
            {"send", send}, {"recv", recv}, {"try_send", trySend}, {"try_recv", tryRecv},
            {"close", close}, {"len", len}, {"cap", cap}, {nullptr, nullptr},
        };
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, destroyChannel);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
}

// isle.channel([capacity])
int newChannel(lua_State *L)
{
    const lua_Integer capacity = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, capacity >= 0, 1, "capacity must be >= 0");
    pushChannelMetatable(L); // first: a memory error there must not leave a channel without its __gc
    auto *c = static_cast<Channel *>(lua_newuserdatauv(L, sizeof(Channel), 2));
    new (c) Channel;
    c->capacity = capacity;
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
    lua_newtable(L);
    lua_setiuservalue(L, -2, BufferSlot);
    lua_newtable(L);
    lua_setiuservalue(L, -2, MailboxSlot);
    return 1;
}

} // namespace

void Channels::open(lua_State *L)
{
    StackGuard guard(L);
    if (lua_getglobal(L, "isle") == LUA_TTABLE) {
        lua_pushcfunction(L, newChannel);
        lua_setfield(L, -2, "channel");
        lua_pushcfunction(L, select);
        lua_setfield(L, -2, "select");
    }
    lua_pop(L, 1);
}
