// Smoke test of the console demo (demo/qml/Console.qml): it loads and runs lines.
import QtQuick
import QtTest

TestCase {
    id: testCase
    name: "Console"
    when: windowShown
    // The console is shown: clicks must land on its buttons.
    visible: true
    width: 640
    height: 400

    function lines(console_) {
        const out = []
        for (let i = 0; i < console_.output.count; ++i)
            out.push(console_.output.get(i).line)
        return out
    }

    // Each input is a chunk named in[N]: an error in a function defined by an
    // earlier input names that input.
    function test_inputsAreNumberedChunks() {
        const component = Qt.createComponent(consoleUrl)
        compare(component.status, Component.Ready, component.errorString())
        const console_ = createTemporaryObject(component, testCase, { width: 640, height: 400 })
        console_.submit("function check(v) if not v then error('no value') end end")
        tryCompare(console_.output, "count", 1, 5000)
        console_.submit("check(false)")
        tryCompare(console_.output, "count", 3, 5000)
        verify(console_.output.get(2).line.indexOf("in[1]:1: no value") >= 0, console_.output.get(2).line)
    }

    function test_runsLines() {
        const component = Qt.createComponent(consoleUrl)
        compare(component.status, Component.Ready, component.errorString())
        const console_ = createTemporaryObject(component, testCase, { width: 640, height: 400 })
        verify(console_)

        console_.submit("1 + 1")
        tryCompare(console_.output, "count", 2, 5000)
        compare(lines(console_), ["> 1 + 1", "2"])

        // A block over two lines, as lua.c takes it.
        console_.submit("for i = 1, 2 do")
        compare(console_.pending, "for i = 1, 2 do")
        console_.submit("print('line', i) end")
        tryCompare(console_.output, "count", 6, 5000)
        compare(lines(console_).slice(2), ["> for i = 1, 2 do", ">> print('line', i) end", "line\t1", "line\t2"])

        console_.submit("local x = 1\nerror('bad')")
        tryCompare(console_.output, "count", 8, 5000)
        compare(console_.output.get(7).line, "Runtime error at line 2: bad")

        console_.submit("while true do end")
        tryCompare(console_.currentJob, "running", true, 5000)
        // The running job has a row of its own, with Pause and Stop.
        tryVerify(() => findChild(console_, "job4") !== null, 5000)
        waitForItemPolished(findChild(console_, "jobList"))
        waitForItemPolished(findChild(console_, "layout"))
        const row = findChild(console_, "job4")
        const pause = findChild(row, "pauseButton")
        const stop = findChild(row, "stopButton")
        verify(pause.enabled && stop.enabled)
        compare(findChild(console_, "status").text, "1 running")
        mouseClick(pause)
        verify(console_.currentJob.suspended)
        compare(pause.text, "Resume")
        mouseClick(pause)
        verify(!console_.currentJob.suspended)
        mouseClick(stop)
        tryCompare(console_.output, "count", 10, 5000)
        compare(console_.output.get(9).line, "stopped")
        compare(console_.jobs.count, 0)
        compare(findChild(console_, "status").text, "idle")

        // feed() types each line once the previous job ended; nil shows nothing.
        console_.feed(["a = 20", "a + 22", "nothing"])
        tryCompare(console_.output, "count", 14, 5000)
        compare(lines(console_).slice(10), ["> a = 20", "> a + 22", "42", "> nothing"])
        compare(console_.history.slice(-3), ["a = 20", "a + 22", "nothing"])

        // Typing: Enter runs the line, Up/Down walk the history.
        const input = findChild(console_, "input")
        input.forceActiveFocus()
        keyClick(Qt.Key_Up)
        compare(input.text, "nothing")
        keyClick(Qt.Key_Up)
        compare(input.text, "a + 22")
        keyClick(Qt.Key_Down)
        compare(input.text, "nothing")
        keyClick(Qt.Key_Down)
        compare(input.text, "")
        keyClick(Qt.Key_Up)
        keyClick(Qt.Key_Up)
        keyClick(Qt.Key_Return)
        tryCompare(console_.output, "count", 16, 5000)
        compare(console_.output.get(15).line, "42")
    }

    function createConsole() {
        const component = Qt.createComponent(consoleUrl)
        compare(component.status, Component.Ready, component.errorString())
        return createTemporaryObject(component, testCase, { width: 640, height: 400 })
    }

    function jobNumbers(console_) {
        const numbers = []
        for (let i = 0; i < console_.jobs.count; ++i)
            numbers.push(console_.jobs.get(i).number)
        return numbers
    }

    // Clicks a button of the row of input number, once it is laid out.
    function clickJobButton(console_, number, button) {
        tryVerify(() => findChild(console_, "job" + number) !== null, 5000)
        waitForItemPolished(findChild(console_, "jobList"))
        waitForItemPolished(findChild(console_, "layout"))
        const target = findChild(findChild(console_, "job" + number), button)
        tryVerify(() => target.visible && target.width > 0, 5000)
        mouseClick(target)
    }

    // A line that sleeps leaves the console free: later lines get their
    // answers meanwhile, and a late answer names its input.
    function test_sleepingLineDoesNotBlock() {
        const console_ = createConsole()
        console_.submit("isle.sleep(10000) return 'first'")
        console_.submit("isle.sleep(200) return 'second'")
        console_.submit("1 + 1")
        tryVerify(() => lines(console_).indexOf("2") >= 0, 5000, lines(console_).join(" | "))
        verify(console_.jobs.count >= 1)
        compare(console_.jobs.get(0).number, 1)
        verify(console_.jobs.get(0).job.running)
        tryVerify(() => lines(console_).indexOf("in[2]: second") >= 0, 5000, lines(console_).join(" | "))
        compare(jobNumbers(console_), [1])
        compare(findChild(console_, "status").text, "1 running")
        verify(lines(console_).indexOf("in[1]: first") < 0)

        // Stop stops only its own job.
        console_.submit("isle.sleep(10000) return 'fourth'")
        compare(jobNumbers(console_), [1, 4])
        clickJobButton(console_, 1, "stopButton")
        tryVerify(() => lines(console_).indexOf("in[1]: stopped") >= 0, 5000, lines(console_).join(" | "))
        compare(jobNumbers(console_), [4])
        const fourth = console_.jobs.get(0).job
        verify(fourth.running)
        wait(50)
        verify(fourth.running)
        clickJobButton(console_, 4, "stopButton")
        tryCompare(fourth, "running", false, 5000)
        verify(fourth.canceled)
        tryVerify(() => lines(console_).indexOf("stopped") >= 0, 5000) // the last input: no tag
        compare(console_.jobs.count, 0)
    }

    // A line that computes takes turns with the others (timeSlice).
    function test_busyLineTakesTurns() {
        const console_ = createConsole()
        console_.submit("spins = 0 while true do spins = spins + 1 end")
        tryVerify(() => console_.jobs.count === 1 && console_.currentJob.running, 5000)
        console_.submit("spins > 0")
        tryVerify(() => lines(console_).indexOf("true") >= 0, 5000, lines(console_).join(" | "))
        compare(jobNumbers(console_), [1])
        clickJobButton(console_, 1, "stopButton")
        tryVerify(() => lines(console_).indexOf("in[1]: stopped") >= 0, 5000, lines(console_).join(" | "))
    }

    // feed() does not wait for ever: a line still running after feedPatience
    // ms lets the next one be typed.
    function test_feedPastASleeper() {
        const console_ = createConsole()
        console_.feedPatience = 100
        console_.feed(["isle.sleep(10000)", "6 * 7"])
        tryVerify(() => lines(console_).indexOf("42") >= 0, 5000, lines(console_).join(" | "))
        compare(jobNumbers(console_), [1])
        console_.jobs.get(0).job.cancel()
        tryVerify(() => console_.jobs.count === 0, 5000)
    }
}
