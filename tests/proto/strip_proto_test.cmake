# Tests proto/etcd/strip_proto.cmake: what it removes, what it keeps, and that
# it stops the build on what it does not understand.
#   cmake -DSTRIP=<strip_proto.cmake> -DWORK=<scratch dir> -P strip_proto_test.cmake
cmake_minimum_required(VERSION 3.16)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# Runs the strip step on `input`; sets `${result}` to its exit code and
# `${output}` to the stripped text.
function(strip input result output)
  file(WRITE "${WORK}/in.proto" "${input}")
  file(REMOVE "${WORK}/out.proto")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -DIN=${WORK}/in.proto -DOUT=${WORK}/out.proto -P ${STRIP}
    RESULT_VARIABLE code OUTPUT_QUIET ERROR_QUIET)
  set(text "")
  if(EXISTS "${WORK}/out.proto")
    file(READ "${WORK}/out.proto" text)
  endif()
  set(${result} ${code} PARENT_SCOPE)
  set(${output} "${text}" PARENT_SCOPE)
endfunction()

function(expect_contains text needle)
  string(FIND "${text}" "${needle}" where)
  if(where EQUAL -1)
    message(FATAL_ERROR "expected `${needle}` in:\n${text}")
  endif()
endfunction()

function(expect_absent text needle)
  string(FIND "${text}" "${needle}" where)
  if(NOT where EQUAL -1)
    message(FATAL_ERROR "expected no `${needle}` in:\n${text}")
  endif()
endfunction()

# The shapes of etcd's rpc.proto: nested blocks, a brace inside a string and
# a comment inside a block, a one-line option, gogoproto file options.
strip([=[
syntax = "proto3";
package demo;
import "gogoproto/gogo.proto";
import "google/api/annotations.proto";
option (gogoproto.marshaler_all) = true;
service S {
  // Call does things; its braces { } in comments stay.
  rpc Call(Req) returns (Resp) {
      option (google.api.http) = {
        post: "/v3/x/{key}"
        body: "*" // a comment with a } brace
        additional_bindings {
          post: "/v3beta/x"
          body: "*"
        }
    };
  }
  rpc Short(Req) returns (Resp) { option (google.api.http).post = "/v3/s"; }
}
message Req { int64 id = 7; string s = 8; }
message Resp { bytes value = 1; }
]=] code out)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "stripping a valid input failed (${code})")
endif()
expect_absent("${out}" "gogoproto")
expect_absent("${out}" "google")
expect_absent("${out}" "/v3")
expect_contains("${out}" "rpc Call(Req) returns (Resp) {")
expect_contains("${out}" "rpc Short(Req) returns (Resp) {")
expect_contains("${out}" "// Call does things; its braces { } in comments stay.")
expect_contains("${out}" "message Req { int64 id = 7; string s = 8; }")
expect_contains("${out}" "message Resp { bytes value = 1; }")

# Braces must still balance after stripping: one `{` and `}` per service,
# rpc and message of the input.
string(REGEX MATCHALL "{" opens "${out}")
string(REGEX MATCHALL "}" closes "${out}")
list(LENGTH opens open_count)
list(LENGTH closes close_count)
# `{ }` in the comment counts once each; service, Call, Short, Req, Resp: 5.
if(NOT open_count EQUAL 6 OR NOT close_count EQUAL 6)
  message(FATAL_ERROR "unbalanced result (${open_count} {, ${close_count} }):\n${out}")
endif()

# A block that never closes stops the build.
strip([=[
service S {
  rpc Call(Req) returns (Resp) {
    option (google.api.http) = { post: "/v3/x"
]=] code out)
if(code EQUAL 0)
  message(FATAL_ERROR "an unclosed block was accepted")
endif()

# A use it does not know (a gogoproto field option) stops the build rather
# than leaving protoc an unknown import.
strip([=[
import "gogoproto/gogo.proto";
message M { bytes b = 1 [(gogoproto.nullable) = false]; }
]=] code out)
if(code EQUAL 0)
  message(FATAL_ERROR "an unknown gogoproto use was accepted")
endif()

message(STATUS "strip_proto: all cases pass")
