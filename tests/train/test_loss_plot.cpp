// The SVG loss plot: well-formed XML (checked by a small parser here), an <svg> root, one polyline per series
// with one point per finite loss, ticks at the 1/2/5 values worked out by hand, labels, escaped title.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "common/test_data.h"
#include "host/train/loss_plot.h"
#include "host/util/read_file.h"

namespace pocketlora {
namespace {

struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;  // character data directly inside it
};

bool name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'));
}

// Character data: no '<', and '&' only as one of XML's predefined entities.
void check_chars(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') throw std::runtime_error("raw '<' in character data");
    if (s[i] != '&') continue;
    const auto semi = s.find(';', i);
    const std::string ent = s.substr(i, semi == std::string::npos ? 0 : semi - i + 1);
    static const std::set<std::string> ok = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    if (!ok.count(ent)) throw std::runtime_error("bad entity at " + s.substr(i, 10));
  }
}

// A well-formedness check of the XML subset an SVG writer needs (prolog, elements, attributes, text); throws on
// the first violation, returns the elements in document order.
std::vector<Element> parse_xml(const std::string& doc) {
  std::size_t i = 0;
  if (doc.compare(0, 5, "<?xml") == 0) i = doc.find("?>") + 2;
  std::vector<Element> all;
  std::vector<std::pair<std::string, std::size_t>> open;  // name, index in all
  int roots = 0;
  while (i < doc.size()) {
    const std::size_t lt = doc.find('<', i);
    const std::string text = doc.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    check_chars(text);
    if (open.empty() && text.find_first_not_of(" \n\t\r") != std::string::npos)
      throw std::runtime_error("text outside the root element");
    if (!open.empty()) all[open.back().second].text += text;
    if (lt == std::string::npos) break;
    i = lt + 1;
    if (doc[i] == '/') {
      const std::size_t gt = doc.find('>', i);
      const std::string name = doc.substr(i + 1, gt - i - 1);
      if (open.empty() || open.back().first != name) throw std::runtime_error("mismatched </" + name + ">");
      open.pop_back();
      i = gt + 1;
      continue;
    }
    Element e;
    while (i < doc.size() && name_char(doc[i], e.name.empty())) e.name += doc[i++];
    if (e.name.empty()) throw std::runtime_error("bad tag name at " + std::to_string(i));
    bool self_closing = false;
    for (;;) {
      while (std::isspace(static_cast<unsigned char>(doc.at(i)))) ++i;
      if (doc[i] == '>') { ++i; break; }
      if (doc.compare(i, 2, "/>") == 0) { i += 2; self_closing = true; break; }
      std::string an;
      while (name_char(doc[i], an.empty())) an += doc[i++];
      if (an.empty() || doc[i] != '=' || doc[i + 1] != '"') throw std::runtime_error("bad attribute in <" + e.name + ">");
      const std::size_t end = doc.find('"', i + 2);
      const std::string value = doc.substr(i + 2, end - i - 2);
      check_chars(value);
      if (!e.attrs.emplace(an, value).second) throw std::runtime_error("duplicate attribute " + an);
      i = end + 1;
    }
    if (open.empty() && ++roots > 1) throw std::runtime_error("more than one root element");
    all.push_back(e);
    if (!self_closing) open.emplace_back(e.name, all.size() - 1);
  }
  if (!open.empty()) throw std::runtime_error("unclosed <" + open.back().first + ">");
  return all;
}

std::vector<const Element*> with_class(const std::vector<Element>& els, const std::string& cls) {
  std::vector<const Element*> out;
  for (const auto& e : els)
    if (e.attrs.count("class") && e.attrs.at("class") == cls) out.push_back(&e);
  return out;
}

TEST(LossPlot, NiceTicks) {
  EXPECT_EQ(nice_ticks(0, 100), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(nice_ticks(1, 3), (std::vector<double>{1, 1.5, 2, 2.5, 3}));       // 2/5 = 0.4 -> 0.5
  EXPECT_EQ(nice_ticks(3, 17), (std::vector<double>{4, 6, 8, 10, 12, 14, 16}));  // 14/5 = 2.8 -> 2
  EXPECT_EQ(nice_step(1, 300), 50);                                              // 59.8 -> 50
  EXPECT_DOUBLE_EQ(nice_step(0, 0.0008), 2e-4);                                      // 1.6e-4 -> 2e-4
}

TEST(LossPlot, WellFormedSvgWithBothSeriesTicksAndLabels) {
  LossCurves c;
  for (int s = 0; s <= 100; ++s) c.train.emplace_back(s, 3.0 - 2.0 * s / 100.0);
  c.train.emplace_back(50.5, NAN);  // a skipped step never reaches the curve
  c.validation = {{25, 2.6}, {50, 2.0}, {100, 1.0}};
  const std::string svg = loss_plot_svg(c, "stories260K <r=8> & \"AdamW\"");
  std::vector<Element> els;
  ASSERT_NO_THROW(els = parse_xml(svg)) << svg;
  ASSERT_FALSE(els.empty());
  EXPECT_EQ(els[0].name, "svg");
  EXPECT_EQ(els[0].attrs.at("xmlns"), "http://www.w3.org/2000/svg");

  const auto train = with_class(els, "train"), val = with_class(els, "validation");
  ASSERT_EQ(train.size(), 1u);
  ASSERT_EQ(val.size(), 1u);
  const auto count_points = [](const std::string& pts) {
    return std::count(pts.begin(), pts.end(), ',');
  };
  EXPECT_EQ(count_points(train[0]->attrs.at("points")), 101);
  EXPECT_EQ(count_points(val[0]->attrs.at("points")), 3);
  EXPECT_EQ(with_class(els, "validation-point").size(), 3u);

  std::vector<std::string> tick_labels;
  for (const auto* t : with_class(els, "tick")) tick_labels.push_back(t->text);
  // x: 0..100 in 20s; y: 1..3 in 0.5s.
  EXPECT_EQ(tick_labels, (std::vector<std::string>{"0", "20", "40", "60", "80", "100", "1", "1.5", "2", "2.5", "3"}));
  std::vector<std::string> axis_labels;
  for (const auto* t : with_class(els, "label")) axis_labels.push_back(t->text);
  EXPECT_EQ(axis_labels, (std::vector<std::string>{"step", "loss"}));
  ASSERT_EQ(with_class(els, "title").size(), 1u);
  EXPECT_EQ(with_class(els, "title")[0]->text, "stories260K &lt;r=8&gt; &amp; &quot;AdamW&quot;");

  // The first train point (step 0, loss 3.0) sits at the frame's top-left corner: axes span the outer ticks.
  const auto* frame = with_class(els, "frame").at(0);
  const std::string first = train[0]->attrs.at("points").substr(0, train[0]->attrs.at("points").find(' '));
  EXPECT_EQ(first, frame->attrs.at("x") + "," + frame->attrs.at("y"));
}

TEST(LossPlot, EmptyAndSinglePointRunsStillPlot) {
  std::vector<Element> els;
  ASSERT_NO_THROW(els = parse_xml(loss_plot_svg({}, "empty")));
  EXPECT_TRUE(with_class(els, "train").empty());
  LossCurves one;
  one.train = {{1, 2.5}};
  ASSERT_NO_THROW(els = parse_xml(loss_plot_svg(one, "one")));
  EXPECT_EQ(with_class(els, "train").size(), 1u);
  EXPECT_FALSE(with_class(els, "tick").empty());
}

TEST(LossPlot, CurvesFromMetricsAndAtomicWrite) {
  std::vector<StepMetrics> recs(4);
  for (int i = 0; i < 4; ++i) recs[i].step = i + 1, recs[i].loss = 3 - i;
  recs[1].skipped = true;
  recs[3].val_loss = 0.5;
  const LossCurves c = loss_curves(recs);
  EXPECT_EQ(c.train, (std::vector<std::pair<double, double>>{{1, 3}, {3, 1}, {4, 0}}));
  EXPECT_EQ(c.validation, (std::vector<std::pair<double, double>>{{4, 0.5}}));
  test::TempDir tmp;
  write_loss_plot(tmp / "loss.svg", c, "run");
  EXPECT_EQ(read_file_text(tmp / "loss.svg"), loss_plot_svg(c, "run"));
}

}  // namespace
}  // namespace pocketlora
