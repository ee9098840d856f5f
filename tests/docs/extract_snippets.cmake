# Turns the C++ snippets of one Markdown file into a C++ source file of
# tst_doc_snippets (the convention is in tests/docs/README.md). Run at build
# time, so a changed .md file is compiled again:
#
#   cmake -DMARKDOWN=<file.md> -DLABEL=<name shown in errors> -DOUTPUT=<file.cpp>
#         -P extract_snippets.cmake
#
# A fenced block whose info string starts with the word `cpp` is a snippet:
#   ```cpp            statements, compiled as the body of DocSnippet::body()
#   ```cpp run        the same, and run by tst_doc_snippets
#   ```cpp file       top-level code (functions, classes, a whole program)
#   ```cpp file tour  README's five-minute tour (tests/consumer builds and runs it)
# `#include` lines of a snippet are moved to the top of the generated file.
# `#line` directives make the compiler report errors at the Markdown's lines.

cmake_minimum_required(VERSION 3.21) # lists keep empty elements (CMP0007)

foreach(var MARKDOWN LABEL OUTPUT)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "extract_snippets.cmake: -D${var}=... is missing")
    endif()
endforeach()

file(READ "${MARKDOWN}" text)
# CMake lists split at ';' and treat '[', ']' and '\' specially: hide them
# while the text is a list of lines, put them back when writing.
string(REPLACE "\\" "@QISLE_BACKSLASH@" text "${text}")
string(REPLACE ";" "@QISLE_SEMICOLON@" text "${text}")
string(REPLACE "[" "@QISLE_LBRACKET@" text "${text}")
string(REPLACE "]" "@QISLE_RBRACKET@" text "${text}")
string(REPLACE "\r" "" text "${text}")
string(REPLACE "\n" ";" lines "${text}")

string(MAKE_C_IDENTIFIER "${LABEL}" fileId)
# The generated file, one list element a line. `#line @QISLE_RESET@` marks a
# directive that points the next line back at the generated file; its number
# is filled in at the end, when every line's place is known.
set(out "namespace qisle_doc_${fileId} {" "namespace {" "")
set(includes "")       # hoisted #include lines, each after its own #line
set(registrations "")  # one DocSnippetRegistration a snippet

# Appends one snippet to `out`: kind is fragment or file; its lines are in
# `body`, their Markdown line numbers in `bodyLines`.
macro(emit_snippet)
    if(kind STREQUAL "file")
        list(APPEND out "namespace snippet_L${fenceLine} {")
        list(APPEND registrations "const DocSnippetRegistration registration_L${fenceLine}(\"${LABEL}\", ${fenceLine}, DocSnippet::Mode::Compile, nullptr)@QISLE_SEMICOLON@")
    else()
        list(APPEND out
            "class Snippet_L${fenceLine} final : public DocSnippet"
            "{"
            "public:"
            "    void body() override"
            "    {"
            "        QISLE_DOC_SNIPPET_SCOPE"
            "        {")
        list(APPEND registrations "const DocSnippetRegistration registration_L${fenceLine}(\"${LABEL}\", ${fenceLine}, DocSnippet::Mode::${mode}, @QISLE_LBRACKET@@QISLE_RBRACKET@ { return std::unique_ptr<DocSnippet>(new Snippet_L${fenceLine})@QISLE_SEMICOLON@ })@QISLE_SEMICOLON@")
    endif()
    set(sync TRUE)
    set(index 0)
    foreach(bodyLine IN LISTS body)
        list(GET bodyLines ${index} mdLine)
        math(EXPR index "${index} + 1")
        string(SUBSTRING "${bodyLine}" 1 -1 bodyLine) # drop the '|' that keeps empty lines
        if(bodyLine MATCHES "^[ \t]*#[ \t]*include[ \t<\"]")
            list(APPEND includes "#line ${mdLine} \"${MARKDOWN}\"" "${bodyLine}")
            set(sync TRUE)
            continue()
        endif()
        if(sync)
            list(APPEND out "#line ${mdLine} \"${MARKDOWN}\"")
            set(sync FALSE)
        endif()
        list(APPEND out "${bodyLine}")
    endforeach()
    list(APPEND out "#line @QISLE_RESET@")
    if(kind STREQUAL "file")
        list(APPEND out "} // namespace snippet_L${fenceLine}")
    else()
        list(APPEND out "        }" "    }" "}@QISLE_SEMICOLON@")
    endif()
    list(APPEND out "")
endmacro()

set(lineNumber 0)
set(inFence FALSE)
foreach(line IN LISTS lines)
    math(EXPR lineNumber "${lineNumber} + 1")
    if(NOT inFence)
        if(line MATCHES "^(```+)(.*)$")
            set(inFence TRUE)
            set(fence "${CMAKE_MATCH_1}")
            string(STRIP "${CMAKE_MATCH_2}" info)
            string(REGEX MATCHALL "[^ \t]+" words "${info}")
            set(language "")
            if(words)
                list(POP_FRONT words language)
            endif()
            set(isSnippet FALSE)
            if(language STREQUAL "cpp")
                set(isSnippet TRUE)
                set(fenceLine ${lineNumber})
                set(kind fragment)
                set(mode Compile)
                set(tour FALSE)
                foreach(word IN LISTS words)
                    if(word STREQUAL "run")
                        set(mode Run)
                    elseif(word STREQUAL "file")
                        set(kind file)
                    elseif(word STREQUAL "tour")
                        set(tour TRUE)
                    else()
                        message(FATAL_ERROR "${MARKDOWN}:${lineNumber}: unknown word `${word}` after ```cpp "
                            "(known: run, file, tour; see tests/docs/README.md)")
                    endif()
                endforeach()
                if(kind STREQUAL "file" AND mode STREQUAL "Run")
                    message(FATAL_ERROR "${MARKDOWN}:${lineNumber}: ```cpp file cannot be run here: "
                        "only statements (```cpp run) are")
                endif()
                if(tour AND NOT kind STREQUAL "file")
                    message(FATAL_ERROR "${MARKDOWN}:${lineNumber}: the tour is a whole program: ```cpp file tour")
                endif()
                set(body "")
                set(bodyLines "")
            elseif(language MATCHES "^(c\\+\\+|C\\+\\+|cxx|cc|CPP|Cpp)$")
                message(FATAL_ERROR "${MARKDOWN}:${lineNumber}: write ```cpp, not ```${language}: "
                    "only `cpp` blocks are compiled (tests/docs/README.md)")
            endif()
        endif()
    else()
        if(line MATCHES "^(```+)[ \t]*$" AND CMAKE_MATCH_1 STREQUAL fence)
            set(inFence FALSE)
            if(isSnippet)
                emit_snippet()
            endif()
        elseif(isSnippet)
            list(APPEND body "|${line}") # '|': an empty first element would vanish
            list(APPEND bodyLines ${lineNumber})
        endif()
    endif()
endforeach()
if(inFence)
    message(FATAL_ERROR "${MARKDOWN}: the block opened with ${fence} is never closed")
endif()

# Lists are passed quoted ("${out}"): an unquoted expansion drops empty lines.
list(APPEND out "${registrations}" "} // namespace" "} // namespace qisle_doc_${fileId}" "")
set(all
    "// Generated from ${LABEL} by tests/docs/extract_snippets.cmake: do not edit."
    "// Every ```cpp block of ${LABEL}: compiled, and the `run` ones run, by tst_doc_snippets."
    "#include \"docsnippet.h\"")
if(includes)
    list(APPEND all "${includes}")
endif()
list(APPEND all "#line @QISLE_RESET@" "${out}")
# Number the resets: `#line N` names the line after the directive.
set(numbered "")
set(n 0)
foreach(line IN LISTS all)
    math(EXPR n "${n} + 1")
    if(line STREQUAL "#line @QISLE_RESET@")
        math(EXPR next "${n} + 1")
        set(line "#line ${next} \"${OUTPUT}\"")
    endif()
    list(APPEND numbered "${line}")
endforeach()
list(JOIN numbered "\n" result)
string(REPLACE "@QISLE_SEMICOLON@" ";" result "${result}")
string(REPLACE "@QISLE_LBRACKET@" "[" result "${result}")
string(REPLACE "@QISLE_RBRACKET@" "]" result "${result}")
string(REPLACE "@QISLE_BACKSLASH@" "\\" result "${result}")

# Write only when it changed, so an edit elsewhere in the .md recompiles nothing.
set(old "")
if(EXISTS "${OUTPUT}")
    file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL result)
    file(WRITE "${OUTPUT}" "${result}")
endif()
