// The IslePool element: requests spread over several isles, from QML.
import QtQuick
import QtTest
import QIsle

TestCase {
    id: testCase
    name: "IslePool"

    IslePool { id: pool; size: 2 }
    IslePool { id: cold; size: 3; warm: false }
    IslePool { id: sandbox; size: 2; libraries: IslePool.SandboxLibraries; timeout: 100 }
    IslePool { id: starved; size: 2; memoryLimit: 1024 } // too little to open the libraries
    IslePool { id: reconfigured; size: 1 }
    Item { id: shown; objectName: "shown"; property int hits: 0; function hit(n) { hits += n; return hits } }
    Component { id: spyComponent; SignalSpy {} }

    function finish(job) {
        tryCompare(job, "running", false, 5000)
        return job
    }

    function spy(target, signalName) {
        return createTemporaryObject(spyComponent, testCase, { target: target, signalName: signalName })
    }

    function test_evaluateAndCall() {
        const job = finish(pool.evaluate("return 6 * 7"))
        compare(job.result, 42)
        compare(job.errorKind, "")
        const called = finish(pool.call("string.rep", ["ab", 3]))
        compare(called.result, "ababab")
    }

    function test_requestsSpreadOverIsles() {
        // Submitted together, two requests go to two isles: the second does
        // not see the global the first sets (each holds its isle a while).
        const first = pool.evaluate("spreadMark = true local t = os.clock() while os.clock() - t < 0.05 do end return 1")
        const second = pool.evaluate("return spreadMark")
        verify(pool.busy)
        compare(finish(first).result, 1)
        compare(finish(second).result, undefined)
        tryCompare(pool, "busy", false)
        // Idle again: a tie goes to the first isle, where the mark is.
        compare(finish(pool.evaluate("return spreadMark")).result, true)
    }

    function test_coldIslesStartWhenNeeded() {
        const jobs = []
        for (let i = 0; i < 3; ++i)
            jobs.push(cold.evaluate("return " + i))
        for (let i = 0; i < 3; ++i)
            compare(finish(jobs[i]).result, i)
    }

    function test_options() {
        const blocked = finish(sandbox.evaluate("return os.execute"))
        compare(blocked.result, undefined)
        const looping = finish(sandbox.evaluate("while true do end"))
        compare(looping.errorKind, "Timeout")
        const failed = finish(starved.evaluate("return 1"))
        compare(failed.errorKind, "Init")
    }

    function test_printed() {
        const printed = spy(pool, "printed")
        finish(pool.evaluate("print('from', 'a pool')"))
        printed.wait(5000)
        compare(printed.signalArguments[0][0], "from\ta pool")
    }

    function test_exposeObjectOnEveryIsle() {
        cold.exposeObject("ui.shown", shown)
        const jobs = []
        for (let i = 0; i < 3; ++i)
            jobs.push(cold.evaluate("return ui.shown.objectName .. ui.shown:hit(1)"))
        const results = jobs.map(job => finish(job).result).sort()
        compare(results, ["shown1", "shown2", "shown3"])
        compare(shown.hits, 3)
    }

    function test_handlerFailed() {
        const failed = spy(pool, "handlerFailed")
        pool.exposeObject("item", shown)
        // One connection on each isle: two requests that hold their isle
        // while they connect.
        const jobs = []
        for (let i = 0; i < 2; ++i)
            jobs.push(pool.evaluate("item.objectNameChanged:connect(function(n) error('broke on ' .. n) end) "
                                    + "local t = os.clock() while os.clock() - t < 0.05 do end"))
        for (const job of jobs)
            compare(finish(job).errorString, "")
        shown.objectName = "renamed"
        tryCompare(failed, "count", 2, 5000)
        verify(failed.signalArguments[0][0].indexOf("broke on renamed") >= 0, failed.signalArguments[0][0])
        compare(failed.signalArguments[0][1], "Runtime")
        shown.objectName = "shown"
        tryCompare(failed, "count", 4, 5000)
    }

    function test_restartOnOptionChange() {
        finish(reconfigured.evaluate("x = 1"))
        compare(finish(reconfigured.evaluate("return x")).result, 1)
        const running = reconfigured.evaluate("while true do end")
        reconfigured.size = 2 // a new pool: running jobs end canceled
        tryCompare(running, "canceled", true, 5000)
        compare(finish(reconfigured.evaluate("return x")).result, undefined)
    }
}
