#include "tensor/json.h"

#include "tests/test_util.h"

namespace dearest {
namespace {

TEST(Json, ParsesAndDumps) {
  Json j = Json::parse(R"({"a": [1, 2.5, -3e2], "b": {"c": "x\"y\u00e9"}, "d": true, "e": null})");
  EXPECT_EQ(j["a"].items().size(), 3u);
  EXPECT_EQ(j["a"].items()[2].as_number(), -300);
  EXPECT_EQ(j["b"]["c"].as_string(), "x\"y\xc3\xa9");
  EXPECT_TRUE(j["d"].as_bool());
  EXPECT_EQ(j["e"].type(), Json::Type::Null);
  Json back = Json::parse(j.dump());
  EXPECT_EQ(back.dump(), j.dump());
  EXPECT_EQ(Json::parse(j.dump(2)).dump(), j.dump());
  // Key order is kept.
  EXPECT_EQ(j.members()[0].first, "a");
  EXPECT_EQ(j.members()[3].first, "e");
}

TEST(Json, RejectsMalformedInput) {
  EXPECT_ERROR_CONTAINS(Json::parse("{\"a\": }", "f.json"), "f.json", "invalid JSON");
  EXPECT_ERROR_CONTAINS(Json::parse("[1, 2", "x"), "invalid JSON");
  EXPECT_ERROR_CONTAINS(Json::parse("{\"a\": 1, \"a\": 2}"), "duplicate key");
  EXPECT_ERROR_CONTAINS(Json::parse("1 2"), "trailing");
  EXPECT_ERROR_CONTAINS(Json::parse("{}")["missing"], "missing");
  EXPECT_ERROR_CONTAINS(Json::parse("1.5").as_int(), "integer");
}

}  // namespace
}  // namespace dearest
