# Makes one of etcd's .proto files compilable by protoc alone, with no other
# package's protos: drops what only Go's code generators read.
#
#   cmake -DIN=<etcd .proto> -DOUT=<copy to write> -P strip_proto.cmake
#
# Removed: the imports of gogoproto/gogo.proto and google/api/annotations.proto
# (C++ clients need neither; see proto/etcd/CMakeLists.txt), the file options
# `option (gogoproto.X) = ...;`, and every `option (google.api.http) = {...};`
# block (braces nest: `additional_bindings { ... }`). Braces inside string
# literals and comments do not count. Messages, fields, numbers and services
# are copied as they are, so the wire format is etcd's.
#
# Fails (FATAL_ERROR, so the build stops) when a block never closes or when
# anything of gogoproto or google.api is left: a new etcd release that uses
# them some other way must be looked at, not compiled half-stripped.

cmake_minimum_required(VERSION 3.16)

if(NOT DEFINED IN OR NOT DEFINED OUT)
  message(FATAL_ERROR "usage: cmake -DIN=<proto> -DOUT=<proto> -P strip_proto.cmake")
endif()
file(READ "${IN}" text)

# Whole-line imports and gogoproto file options.
string(REGEX REPLACE "import[ \t]+\"gogoproto/gogo.proto\"[ \t]*;" "" text "${text}")
string(REGEX REPLACE "import[ \t]+\"google/api/annotations.proto\"[ \t]*;" "" text "${text}")
string(REGEX REPLACE "option[ \t]+\\(gogoproto\\.[A-Za-z0-9_]+\\)[ \t]*=[^;]*;" "" text "${text}")

# The HTTP gateway blocks: find each start, then walk to its matching brace.
set(marker "option (google.api.http)")
string(LENGTH "${marker}" marker_length)
while(TRUE)
  string(FIND "${text}" "${marker}" start)
  if(start EQUAL -1)
    break()
  endif()
  string(LENGTH "${text}" length)
  math(EXPR i "${start} + ${marker_length}")
  set(depth 0)
  set(opened FALSE)
  set(in_string FALSE)
  set(in_comment FALSE)
  set(end -1)
  while(i LESS length)
    string(SUBSTRING "${text}" ${i} 1 c)
    if(in_comment)
      if(c STREQUAL "\n")
        set(in_comment FALSE)
      endif()
    elseif(in_string)
      if(c STREQUAL "\\")
        math(EXPR i "${i} + 1")
      elseif(c STREQUAL "\"")
        set(in_string FALSE)
      endif()
    elseif(c STREQUAL "\"")
      set(in_string TRUE)
    elseif(c STREQUAL "/")
      math(EXPR next "${i} + 1")
      if(next LESS length)
        string(SUBSTRING "${text}" ${next} 1 c2)
        if(c2 STREQUAL "/")
          set(in_comment TRUE)
        endif()
      endif()
    elseif(c STREQUAL "{")
      math(EXPR depth "${depth} + 1")
      set(opened TRUE)
    elseif(c STREQUAL "}")
      math(EXPR depth "${depth} - 1")
      if(depth EQUAL 0)
        set(end ${i})
        break()
      endif()
    elseif(c STREQUAL ";" AND NOT opened)
      # `option (google.api.http) = ...;` without a block: ends here.
      set(end ${i})
      break()
    endif()
    math(EXPR i "${i} + 1")
  endwhile()
  if(end EQUAL -1)
    message(FATAL_ERROR "${IN}: an `${marker}` block at offset ${start} never closes")
  endif()
  # Swallow the `;` that ends the option statement, if any.
  math(EXPR after "${end} + 1")
  string(SUBSTRING "${text}" ${after} -1 rest)
  string(REGEX REPLACE "^[ \t\r\n]*;" "" rest "${rest}")
  string(SUBSTRING "${text}" 0 ${start} head)
  set(text "${head}${rest}")
endwhile()

foreach(left "gogoproto" "google.api" "google/api")
  string(FIND "${text}" "${left}" where)
  if(NOT where EQUAL -1)
    message(FATAL_ERROR "${IN}: `${left}` is still used after stripping (offset ${where}); "
                        "strip_proto.cmake does not know this use")
  endif()
endforeach()

# Write only on change, so an unchanged input does not rebuild the stubs.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${text}")
