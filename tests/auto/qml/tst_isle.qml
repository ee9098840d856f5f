// The Isle element and its jobs, from QML.
import QtQuick
import QtTest
import QIsle

TestCase {
    id: testCase
    name: "Isle"

    Isle { id: lua }
    Isle { id: limited; timeout: 100; memoryLimit: 4 * 1024 * 1024 }
    Isle { id: sandbox; libraries: Isle.SandboxLibraries }
    Isle { id: starved; memoryLimit: 1024 } // too little to open the libraries
    Isle { id: concurrent; maxConcurrentRequests: 0; timeSlice: 20 } // jobs side by side
    Isle { id: reconfigured }
    SignalSpy { id: printSpy; target: lua; signalName: "printed" }
    Component { id: spyComponent; SignalSpy {} }
    property Job typedJob: null // Job is a QML type (uncreatable)

    function finish(job) {
        tryCompare(job, "running", false, 5000)
        return job
    }

    function spy(target, signalName) {
        return createTemporaryObject(spyComponent, testCase, { target: target, signalName: signalName })
    }

    function test_evaluate() {
        typedJob = lua.evaluate("return 6 * 7")
        const job = typedJob
        verify(job.running)
        finish(job)
        compare(job.result, 42)
        compare(job.errorKind, "")
        compare(job.errorLine, -1)
        verify(!job.canceled)
    }

    function test_luaToJs_data() {
        return [
            { tag: "integer", code: "return 7", expected: 7 },
            { tag: "float", code: "return 0.5", expected: 0.5 },
            { tag: "string", code: "return 'héllo'", expected: "héllo" },
            { tag: "boolean", code: "return true", expected: true },
            { tag: "sequence", code: "return {1, 'two', 3}", expected: [1, "two", 3] },
            { tag: "table", code: "return {a = 1, b = {c = 'x'}}", expected: { a: 1, b: { c: "x" } } },
            { tag: "nested", code: "return {{1, 2}, {k = {3}}}", expected: [[1, 2], { k: [3] }] },
        ]
    }

    function test_luaToJs(data) {
        const job = finish(lua.evaluate(data.code))
        compare(job.errorString, "")
        compare(job.result, data.expected)
    }

    function test_nil() {
        const job = finish(lua.evaluate("x = 1"))
        compare(job.result, undefined)
    }

    function test_jsToLua_data() {
        return [
            { tag: "array", args: [[1, "two", true]], probe: "return {#a, math.type(a[1]), a[2], a[3]}",
              expected: [3, "integer", "two", true] },
            { tag: "object", args: [{ name: "x", n: 2.5, inner: { list: [4, 5] } }],
              probe: "return {a.name, a.n, math.type(a.n), a.inner.list[2]}", expected: ["x", 2.5, "float", 5] },
            { tag: "null", args: [null], probe: "return a == nil", expected: true },
        ]
    }

    function test_jsToLua(data) {
        finish(lua.evaluate("function probe(a) " + data.probe + " end"))
        const job = finish(lua.call("probe", data.args))
        compare(job.errorString, "")
        compare(job.result, data.expected)
    }

    function test_callOneArgument() {
        compare(finish(lua.call("string.upper", "abc")).result, "ABC")
        compare(finish(lua.call("math.max", [3, 9, 4])).result, 9)
    }

    function test_stream() {
        const job = lua.evaluate("for i = 1, 3 do isle.emit({i, i * 10}) isle.progress(i, 3, 'step ' .. i) end return 'done'")
        const emitted = spy(job, "resultEmitted")
        const finished = spy(job, "finished")
        finish(job)
        compare(emitted.count, 3)
        compare(emitted.signalArguments[0][0], 1)
        compare(emitted.signalArguments[2][1], [3, 30])
        compare(finished.count, 1)
        compare(job.result, "done")
        compare(job.progress, 3)
        compare(job.progressMaximum, 3)
        compare(job.progressText, "step 3")
    }

    function test_printed() {
        printSpy.clear()
        finish(lua.evaluate("print('hello', 42, nil)"))
        tryCompare(printSpy, "count", 1, 5000)
        compare(printSpy.signalArguments[0][0], "hello\t42\tnil")
    }

    function test_cancel() {
        const job = lua.evaluate("isle.emit(0) while true do end")
        const emitted = spy(job, "resultEmitted")
        const failed = spy(job, "failed")
        emitted.wait(5000)
        verify(lua.busy)
        job.cancel()
        finish(job)
        verify(job.canceled)
        compare(job.errorKind, "")
        compare(failed.count, 0)
        tryCompare(lua, "busy", false, 5000)
        compare(finish(lua.evaluate("return 'alive'")).result, "alive")
    }

    function test_suspendResume() {
        const job = lua.evaluate("isle.emit(0) while true do end")
        spy(job, "resultEmitted").wait(5000)
        job.suspend()
        verify(job.suspended)
        job.resume()
        verify(!job.suspended)
        job.suspend()
        job.cancel()
        finish(job)
        verify(job.canceled)
        verify(!job.suspended)
    }

    function test_errors_data() {
        return [
            { tag: "runtime", isle: lua, code: "local a = 1\nerror('boom')", kind: "Runtime", line: 2, message: "boom" },
            { tag: "syntax", isle: lua, code: "x = 1\nx = = 2", kind: "Syntax", line: 2, message: "unexpected symbol" },
            { tag: "timeout", isle: limited, code: "while true do end", kind: "Timeout", line: -1, message: "timeout" },
            { tag: "memory", isle: limited, code: "local t = {} for i = 1, 1e8 do t[i] = i end", kind: "Memory",
              line: -1, message: "" },
            { tag: "conversion", isle: lua, code: "return print", kind: "Conversion", line: -1, message: "function" },
        ]
    }

    function test_errors(data) {
        const job = data.isle.evaluate(data.code)
        const failed = spy(job, "failed")
        finish(job)
        compare(failed.count, 1)
        compare(job.errorKind, data.kind)
        if (data.line > 0)
            compare(job.errorLine, data.line)
        verify(job.errorString.indexOf(data.message) >= 0, job.errorString)
        verify(!job.canceled)
        compare(job.result, undefined)
    }

    function test_vmThatCannotStart() {
        const job = finish(starved.evaluate("return 1"))
        compare(job.errorKind, "Init")
        verify(!job.canceled)
        compare(finish(starved.evaluate("return 1")).errorKind, "Init") // until an option changes
        starved.memoryLimit = 0
        compare(finish(starved.evaluate("return 1")).result, 1)
    }

    function test_sandbox() {
        compare(finish(sandbox.evaluate("return type(io)")).result, "nil")
        compare(finish(lua.evaluate("return type(io)")).result, "table")
    }

    function test_classify_data() {
        return [
            { tag: "expression", input: "1 + 1", kind: "Expression", chunk: "return 1 + 1" },
            { tag: "statements", input: "x = 1", kind: "Statements", chunk: "x = 1" },
            { tag: "incomplete", input: "for i = 1, 2 do", kind: "Incomplete", chunk: undefined },
            { tag: "syntax-error", input: "x = = 1", kind: "SyntaxError", chunk: undefined },
        ]
    }

    function test_classify(data) {
        const input = lua.classify(data.input)
        compare(input.kind, data.kind)
        if (data.chunk !== undefined)
            compare(input.chunk, data.chunk)
        if (data.kind === "SyntaxError")
            compare(input.line, 1)
    }

    function test_runningJobOutlivesGarbageCollection() {
        lua.evaluate("isle.sleep(100) collected = 'no'") // not referenced from JavaScript
        gc()
        verify(lua.busy)
        tryCompare(lua, "busy", false, 5000) // only a job that finished clears busy
        compare(finish(lua.evaluate("return collected")).result, "no")
    }

    function test_restartOnOptionChange() {
        finish(limited.evaluate("kept = 1"))
        compare(finish(limited.evaluate("return kept")).result, 1)
        limited.timeout = 200 // a new VM at the next request
        compare(finish(limited.evaluate("return kept")).result, undefined)
    }

    function test_concurrentDefaults() {
        compare(lua.maxConcurrentRequests, 1)
        compare(lua.timeSlice, 0)
        compare(concurrent.maxConcurrentRequests, 0)
        compare(concurrent.timeSlice, 20)
    }

    // One after another by default: the second job starts when the first ends.
    function test_oneAtATimeByDefault() {
        const sleeping = lua.evaluate("isle.sleep(150) order = 'first'")
        const next = finish(lua.evaluate("return order"))
        compare(next.result, "first")
        finish(sleeping)
    }

    // maxConcurrentRequests: 0: a job that sleeps lets the next one run.
    function test_sleepingJobDoesNotBlock() {
        const sleeping = concurrent.evaluate("isle.sleep(10000) return 'slept'")
        const quick = finish(concurrent.evaluate("return 1 + 1"))
        compare(quick.result, 2)
        verify(sleeping.running)
        verify(concurrent.busy)
        sleeping.cancel()
        finish(sleeping)
        verify(sleeping.canceled)
        tryCompare(concurrent, "busy", false, 5000)
    }

    // timeSlice: a CPU-bound job takes turns with the jobs that are ready.
    function test_timeSliceLetsOthersIn() {
        const spinning = concurrent.evaluate("isle.emit(0) while true do end")
        spy(spinning, "resultEmitted").wait(5000)
        const quick = finish(concurrent.evaluate("return 'answered'"))
        compare(quick.result, "answered")
        verify(spinning.running)
        spinning.cancel()
        finish(spinning)
        verify(spinning.canceled)
    }

    // Each new value notifies and restarts the VM, as the other options do;
    // the same value does nothing; a negative one is 0.
    function test_concurrencyOptionsRestart() {
        const maxSpy = spy(reconfigured, "maxConcurrentRequestsChanged")
        const sliceSpy = spy(reconfigured, "timeSliceChanged")
        finish(reconfigured.evaluate("kept = 1"))
        const waiting = reconfigured.evaluate("isle.sleep(10000)")
        reconfigured.maxConcurrentRequests = 4
        compare(maxSpy.count, 1)
        finish(waiting)
        verify(waiting.canceled)
        compare(finish(reconfigured.evaluate("return kept")).result, undefined)
        reconfigured.maxConcurrentRequests = 4
        compare(maxSpy.count, 1)

        finish(reconfigured.evaluate("kept = 2"))
        reconfigured.timeSlice = 15
        compare(sliceSpy.count, 1)
        compare(finish(reconfigured.evaluate("return kept")).result, undefined)

        reconfigured.maxConcurrentRequests = -3
        compare(reconfigured.maxConcurrentRequests, 0)
        reconfigured.timeSlice = -1
        compare(reconfigured.timeSlice, 0)
        compare(maxSpy.count, 2)
        compare(sliceSpy.count, 2)
        // The new options are in force: a sleeper no longer holds the VM.
        const sleeper = reconfigured.evaluate("isle.sleep(10000)")
        compare(finish(reconfigured.evaluate("return 'beside'")).result, "beside")
        sleeper.cancel()
        finish(sleeper)
    }
}
