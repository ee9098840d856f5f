// Copyright (c) QIsle authors. SPDX-License-Identifier: MIT OR Apache-2.0
//
// libFuzzer target: arbitrary chunks through QIsle::eval on a sandboxed isle
// with a small memory limit and timeout. Every outcome must be a result or a
// QIsleError (any other exception, a crash, a sanitizer report or a hang is a
// finding), and the isle must keep serving afterwards.
//
// Each input gets an isle of its own, so inputs do not leak state into each
// other. Two things are taken away from the chunks, because README ("What
// cannot be stopped, and the bound") documents that they cannot be stopped
// and the fuzzer would only report that documented hang: a __gc metamethod
// (Lua runs finalizers with hooks off) and an enormous string.find (one C
// call, O(subject x pattern), no hook inside).
#include <QIsle/QIsle>

#include <QtCore/QCoreApplication>

#include <QIsle/QIsleLua>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr char Prelude[] = R"lua(
local raw = setmetatable
setmetatable = function(t, mt)
  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then error('no __gc in the fuzzer', 2) end
  return raw(t, mt)
end
local find = string.find
string.find = function(s, p, ...)
  if type(s) == 'string' and type(p) == 'string' and #s * #p > 1e8 then
    error('no enormous string.find in the fuzzer', 2)
  end
  return find(s, p, ...)
end
)lua";

[[noreturn]] void die(const char *what, const QString &detail = {})
{
    std::fprintf(stderr, "fuzz_eval: %s %s\n", what, qPrintable(detail));
    std::fflush(stderr);
    std::abort();
}

// Touches every part of a result, so that a sanitizer sees bad memory.
qsizetype walk(const QVariant &v, int depth = 0)
{
    if (depth > 200)
        die("a result nested deeper than the value bridge allows");
    switch (v.typeId()) {
    case QMetaType::QVariantList: {
        qsizetype n = 1;
        for (const QVariant &item : v.toList())
            n += walk(item, depth + 1);
        return n;
    }
    case QMetaType::QVariantMap: {
        qsizetype n = 1;
        const QVariantMap map = v.toMap();
        for (auto it = map.cbegin(); it != map.cend(); ++it)
            n += it.key().size() + walk(it.value(), depth + 1);
        return n;
    }
    case QMetaType::QString:
        return v.toString().size();
    case QMetaType::QByteArray:
        return v.toByteArray().size();
    default:
        return 1;
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static QCoreApplication app(*argc, *argv);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    QIsleOptions options;
    options.libraries = QIsleOptions::SandboxLibraries;
    options.memoryLimit = 32 * 1024 * 1024;
    options.timeout = std::chrono::milliseconds(50);
    std::unique_ptr<QIsle> isle = QIsle::spawn([](lua_State *L) {
        if (luaL_dostring(L, Prelude) != LUA_OK)
            lua_error(L);
    }, options);

    const QString chunk = QString::fromUtf8(reinterpret_cast<const char *>(data), qsizetype(size));
    try {
        walk(isle->eval(chunk));
    } catch (const QIsleError &e) {
        if (e.message().isNull() && e.kind() != QIsleError::Kind::Timeout && e.kind() != QIsleError::Kind::Cancelled)
            die("an error without a message of kind", QIsleError::kindName(e.kind()));
    } catch (const std::exception &e) {
        die("not a QIsleError:", QString::fromLocal8Bit(e.what()));
    } catch (...) {
        die("an unknown exception");
    }
    // Whatever the chunk did, the isle serves the next request.
    try {
        if (isle->eval(QStringLiteral("return 1 + 1")) != QVariant(qlonglong(2)))
            die("the isle answered 1 + 1 wrongly");
    } catch (const QIsleError &e) {
        // A chunk may have replaced a global the check would use; a fresh
        // chunk that needs no global must still work.
        if (e.kind() != QIsleError::Kind::Memory)
            die("the isle stopped serving:", QString::fromUtf8(e.what()));
    }
    return 0;
}
