# cmake -DIN=file -DOUT=file.c -P embed.cmake: IN's bytes as the C array
# mig_served_desc[] (and its length), for server reflection.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* Generated from the served .proto files by proto/embed.cmake. */\n"
  "#include <stddef.h>\n#include <stdint.h>\n"
  "const uint8_t mig_served_desc[] = {\n${body}\n};\n"
  "const size_t mig_served_desc_len = ${len};\n")
