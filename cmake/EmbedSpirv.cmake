# cmake -DIN=x.spv -DOUT=x.cpp -DIDENT=name -P EmbedSpirv.cmake : SPIR-V words as a C array.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR rem "${n} % 8")
if(NOT rem EQUAL 0 OR n EQUAL 0)
  message(FATAL_ERROR "${IN}: not a whole number of 32-bit SPIR-V words")
endif()
# Little-endian bytes -> 32-bit words.
string(REGEX REPLACE "(..)(..)(..)(..)" "0x\\4\\3\\2\\1u," words "${hex}")
math(EXPR count "${n} / 8")
file(WRITE ${OUT} "// Generated from ${IN}\nextern const unsigned int pl_spirv_${IDENT}[] = {${words}};\nextern const unsigned long pl_spirv_${IDENT}_words = ${count};\n")
