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
        // The buttons follow the current job.
        const pause = findChild(console_, "pauseButton")
        const stop = findChild(console_, "stopButton")
        verify(pause.enabled && stop.enabled)
        mouseClick(pause)
        verify(console_.currentJob.suspended)
        compare(pause.text, "Resume")
        mouseClick(pause)
        verify(!console_.currentJob.suspended)
        mouseClick(stop)
        tryCompare(console_.output, "count", 10, 5000)
        compare(console_.output.get(9).line, "stopped")
        verify(!stop.enabled)

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
}
